// The Logs page: searches the Logs API, draws matching records over time as bars
// stacked by severity (uPlot; drag to narrow the range), lists facets that filter
// when clicked, shows the records (click one for all its fields) and follows new
// ones live over server-sent events. Log text is only ever inserted with
// textContent, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("logs");
  if (!root) return;

  var form = document.getElementById("logs-form");
  var qInput = document.getElementById("logs-q");
  var rangeSel = document.getElementById("logs-range");
  var startInput = document.getElementById("logs-start");
  var endInput = document.getElementById("logs-end");
  var liveBox = document.getElementById("logs-live");
  var errorEl = document.getElementById("logs-error");
  var statusEl = document.getElementById("logs-status");
  var chartEl = document.getElementById("logs-chart");
  var facetsEl = document.getElementById("logs-facets");
  var rowsEl = document.getElementById("logs-rows");
  var emptyEl = document.getElementById("logs-empty");
  var moreBtn = document.getElementById("logs-more");

  var RANGES = { "5m": 300, "15m": 900, "1h": 3600, "3h": 10800, "6h": 21600, "12h": 43200, "24h": 86400, "2d": 172800, "7d": 604800 };
  var LEVELS = ["UNSPECIFIED", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
  var COLORS = { UNSPECIFIED: "#98a2b3", TRACE: "#c1c7d0", DEBUG: "#98a2b3", INFO: "#2f6fde", WARN: "#f59f00", ERROR: "#c0262d", FATAL: "#7a0916" };
  var MAX_LIVE_ROWS = 500;

  var plot = null;
  var runSeq = 0;
  var cursor = "";
  var current = null; // the request parameters of the rows shown
  var source = null; // the live tail's EventSource
  var liveCount = 0;

  // --- small helpers -------------------------------------------------------

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function fmtCount(n) {
    return Number(n).toLocaleString("en-US");
  }

  function fmtTime(s) {
    var d = new Date(s);
    if (isNaN(d.getTime())) return String(s);
    return d.toISOString().replace("T", " ");
  }

  function parseTime(s) {
    if (/^\d+(\.\d+)?$/.test(s)) return parseFloat(s);
    var ms = Date.parse(s);
    if (isNaN(ms)) throw new Error('cannot parse time "' + s + '": use RFC 3339 or Unix seconds');
    return ms / 1000;
  }

  // showError shows an API or network error; null hides it.
  function showError(msg) {
    if (msg) {
      errorEl.textContent = msg;
      errorEl.hidden = false;
    } else {
      errorEl.textContent = "";
      errorEl.hidden = true;
    }
  }

  function getJSON(path, params) {
    var qs = new URLSearchParams(params).toString();
    return fetch(path + "?" + qs, { headers: { Accept: "application/json" } }).then(function (resp) {
      return resp.text().then(function (text) {
        var body;
        try {
          body = JSON.parse(text);
        } catch (e) {
          throw new Error("HTTP " + resp.status + ": " + text.slice(0, 300));
        }
        if (!resp.ok) throw new Error(body.error || "HTTP " + resp.status);
        return body;
      });
    });
  }

  // --- query state ----------------------------------------------------------

  // params reads the form: the query and the time range in Unix seconds.
  function params() {
    var end = endInput.value.trim() ? parseTime(endInput.value.trim()) : Date.now() / 1000;
    var start;
    if (startInput.value.trim()) {
      start = parseTime(startInput.value.trim());
    } else {
      start = end - (RANGES[rangeSel.value] || 3600);
    }
    if (!(end > start)) throw new Error("the range must end after it starts");
    return { query: qInput.value.trim(), start: start, end: end };
  }

  function syncURL() {
    var u = new URLSearchParams();
    if (qInput.value.trim()) u.set("query", qInput.value.trim());
    if (startInput.value.trim()) {
      u.set("start", startInput.value.trim());
      if (endInput.value.trim()) u.set("end", endInput.value.trim());
    } else {
      u.set("range", rangeSel.value);
      if (endInput.value.trim()) u.set("end", endInput.value.trim());
    }
    history.replaceState(null, "", "/logs?" + u.toString());
  }

  // quoteValue writes a facet value so the query parser reads it back as one
  // exact value.
  function quoteValue(v) {
    if (/^[A-Za-z0-9_.\-@\/]+$/.test(v) && v !== "OR" && v !== "AND" && v !== "NOT" && !/^-/.test(v)) return v;
    return '"' + v.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }

  function addFilter(field, value) {
    var term = field + ":" + quoteValue(value);
    var q = qInput.value.trim();
    if ((" " + q + " ").indexOf(" " + term + " ") >= 0) return;
    qInput.value = q ? q + " " + term : term;
    run();
  }

  // --- rendering ------------------------------------------------------------

  function renderHistogram(h, p) {
    var levels = (h.levels || []).slice().sort(function (a, b) { return LEVELS.indexOf(a) - LEVELS.indexOf(b); });
    var xs = [], raw = {}, cum = [];
    levels.forEach(function (l) { raw[l] = []; });
    (h.buckets || []).forEach(function (b) {
      xs.push(Date.parse(b.start) / 1000);
      levels.forEach(function (l) { raw[l].push((b.counts && b.counts[l]) || 0); });
    });
    // Bars are stacked by drawing the running totals, the most severe (the
    // tallest) first, each less severe one over the lower part of the one before.
    var running = xs.map(function () { return 0; });
    levels.forEach(function (l, k) {
      running = running.map(function (v, i) { return v + raw[l][i]; });
      cum[k] = running.slice();
    });
    chartEl.setAttribute("data-total", String(h.total || 0));
    chartEl.setAttribute("data-buckets", String(xs.length));
    var data = [xs];
    var series = [{}];
    for (var k = levels.length - 1; k >= 0; k--) {
      (function (l, k) {
        data.push(cum[k]);
        series.push({
          label: l,
          stroke: COLORS[l] || "#98a2b3",
          fill: COLORS[l] || "#98a2b3",
          width: 0,
          paths: uPlot.paths.bars({ size: [0.9, 80] }),
          points: { show: false },
          value: function (u, v, si, idx) { return idx == null ? "" : fmtCount(raw[l][idx]); },
        });
      })(levels[k], k);
    }
    if (levels.length === 0) {
      data.push(xs.map(function () { return 0; }));
      series.push({ label: "records", stroke: "#98a2b3", width: 0, points: { show: false } });
    }
    if (plot) {
      plot.destroy();
      plot = null;
    }
    if (typeof uPlot === "undefined") return;
    var opts = {
      width: Math.max(chartEl.clientWidth, 300),
      height: 160,
      series: series,
      scales: { x: { time: true, range: function () { return [p.start, p.end]; } }, y: { range: function (u, lo, hi) { return [0, Math.max(hi, 1) * 1.05]; } } },
      axes: [{}, { size: 70, values: function (u, vals) { return vals.map(function (v) { return Number.isInteger(v) ? fmtCount(v) : ""; }); } }],
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      legend: { show: true },
      hooks: {
        setSelect: [function (u) {
          if (u.select.width < 3) return;
          var a = u.posToVal(u.select.left, "x");
          var b = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          narrow(a, b);
        }],
      },
    };
    plot = new uPlot(opts, data, chartEl);
  }

  // narrow sets the range to [a, b] Unix seconds, as a drag on the chart does.
  function narrow(a, b) {
    startInput.value = new Date(a * 1000).toISOString();
    endInput.value = new Date(b * 1000).toISOString();
    rangeSel.value = "custom";
    run();
  }

  function facetList(title, field, values, testid) {
    var box = el("div");
    box.setAttribute("data-testid", testid);
    box.appendChild(el("h3", null, title));
    var ul = el("ul");
    values.forEach(function (v) {
      var li = el("li");
      li.setAttribute("data-testid", "facet-value");
      li.setAttribute("data-field", field);
      li.setAttribute("data-value", v.value);
      li.title = "Filter on " + field + ":" + v.value;
      li.appendChild(el("span", "v", v.value));
      li.appendChild(el("span", "n", fmtCount(v.count)));
      li.addEventListener("click", function () { addFilter(field, v.value); });
      ul.appendChild(li);
    });
    box.appendChild(ul);
    return box;
  }

  function renderFacets(f) {
    clear(facetsEl);
    if (!f.total) {
      facetsEl.appendChild(el("p", "muted", "No values to filter on."));
      return;
    }
    if (f.estimated) {
      var note = el("p", "muted", "Attribute counts are estimated: too many records to read them all.");
      note.setAttribute("data-testid", "facets-estimated");
      facetsEl.appendChild(note);
    }
    facetsEl.appendChild(facetList("Service", "service", f.service || [], "facet-service"));
    facetsEl.appendChild(facetList("Severity", "severity", f.severity || [], "facet-severity"));
    (f.attributes || []).forEach(function (a) {
      facetsEl.appendChild(facetList(a.key, a.key, a.values || [], "facet-attr"));
    });
  }

  function attrRows(table, prefix, attrs) {
    (attrs || []).forEach(function (a) {
      addField(table, prefix + a.key, a.value);
    });
  }

  function addField(table, key, value, href) {
    if (value === undefined || value === null || value === "") return;
    var tr = el("tr");
    tr.appendChild(el("td", "k", key));
    var td = el("td");
    if (href) {
      var a = el("a", null, value);
      a.href = href;
      a.setAttribute("data-testid", "log-trace-link");
      td.appendChild(a);
    } else {
      td.textContent = String(value);
    }
    tr.appendChild(td);
    table.appendChild(tr);
  }

  function details(r) {
    var t = el("table");
    t.setAttribute("data-testid", "log-details");
    addField(t, "time", r.time);
    addField(t, "observed_time", r.observed_time);
    addField(t, "severity", r.severity + " (" + r.severity_number + (r.severity_text ? ", " + r.severity_text : "") + ")");
    addField(t, "service", r.service);
    addField(t, "body", r.body);
    addField(t, "body_type", r.body_type);
    if (r.trace_id) addField(t, "trace_id", r.trace_id, "/traces/" + encodeURIComponent(r.trace_id));
    addField(t, "span_id", r.span_id);
    addField(t, "event_name", r.event_name);
    addField(t, "flags", r.flags);
    attrRows(t, "", r.attributes);
    attrRows(t, "resource.", r.resource);
    addField(t, "scope", r.scope_name ? r.scope_name + (r.scope_version ? " " + r.scope_version : "") : "");
    attrRows(t, "scope.", r.scope_attributes);
    addField(t, "id", r.id);
    return t;
  }

  function row(r, isNew) {
    var li = el("li", "sev-" + (r.severity || "UNSPECIFIED") + (isNew ? " new" : ""));
    li.setAttribute("data-testid", "log-row");
    li.setAttribute("data-id", r.id);
    li.setAttribute("data-service", r.service || "");
    li.setAttribute("data-severity", r.severity || "");
    var line = el("div", "line");
    line.appendChild(el("span", "t", fmtTime(r.time)));
    line.appendChild(el("span", "sev", r.severity));
    line.appendChild(el("span", "svc", r.service));
    var body = el("span", "b", r.body);
    body.setAttribute("data-testid", "log-body");
    line.appendChild(body);
    line.addEventListener("click", function () {
      var d = li.querySelector("table");
      if (d) li.removeChild(d);
      else li.appendChild(details(r));
    });
    li.appendChild(line);
    return li;
  }

  function appendRows(records) {
    records.forEach(function (r) { rowsEl.appendChild(row(r, false)); });
  }

  // --- running a search -------------------------------------------------------

  function run() {
    var p;
    try {
      p = params();
    } catch (e) {
      showError(e.message);
      return;
    }
    syncURL();
    var seq = ++runSeq;
    current = p;
    statusEl.textContent = "Searching…";
    var base = { query: p.query, start: p.start.toFixed(3), end: p.end.toFixed(3) };
    var search = getJSON("/api/v1/logs", Object.assign({ limit: "100" }, base));
    var hist = getJSON("/api/v1/logs/histogram", base);
    var facets = getJSON("/api/v1/logs/facets", base);
    Promise.all([search, hist, facets]).then(function (res) {
      if (seq !== runSeq) return;
      showError(null);
      var s = res[0];
      clear(rowsEl);
      appendRows(s.records || []);
      cursor = s.next_cursor || "";
      moreBtn.hidden = !cursor;
      emptyEl.hidden = (s.records || []).length > 0;
      statusEl.textContent = fmtCount(s.total) + " records in " + fmtTime(p.start * 1000).slice(0, 19) + " – " + fmtTime(p.end * 1000).slice(0, 19) + " UTC (" + s.took_ms + " ms)";
      statusEl.setAttribute("data-total", String(s.total));
      renderHistogram(res[1], p);
      renderFacets(res[2]);
      if (source) startLive();
    }).catch(function (e) {
      if (seq !== runSeq) return;
      statusEl.textContent = "";
      showError(e.message);
    });
  }

  function loadMore() {
    if (!cursor || !current) return;
    var p = current, seq = runSeq;
    moreBtn.disabled = true;
    getJSON("/api/v1/logs", { query: p.query, start: p.start.toFixed(3), end: p.end.toFixed(3), limit: "100", cursor: cursor }).then(function (s) {
      if (seq !== runSeq) return;
      appendRows(s.records || []);
      cursor = s.next_cursor || "";
      moreBtn.hidden = !cursor;
    }).catch(function (e) {
      showError(e.message);
    }).finally(function () {
      moreBtn.disabled = false;
    });
  }

  // --- live tail --------------------------------------------------------------

  function stopLive() {
    if (source) source.close();
    source = null;
    liveBox.setAttribute("data-state", "off");
  }

  function startLive() {
    stopLive();
    liveCount = 0;
    var es = new EventSource("/api/v1/logs/tail?query=" + encodeURIComponent(qInput.value.trim()));
    source = es;
    liveBox.setAttribute("data-state", "connecting");
    es.onopen = function () {
      // The server subscribes before it answers: records sent from now on arrive.
      if (source === es) liveBox.setAttribute("data-state", "open");
    };
    es.onmessage = function (ev) {
      if (source !== es) return;
      var r;
      try {
        r = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      liveCount++;
      emptyEl.hidden = true;
      rowsEl.insertBefore(row(r, true), rowsEl.firstChild);
      while (rowsEl.children.length > MAX_LIVE_ROWS) rowsEl.removeChild(rowsEl.lastChild);
      statusEl.textContent = "Live: " + fmtCount(liveCount) + " new records";
    };
    es.addEventListener("end", function (ev) {
      if (source !== es) return;
      var msg = "the live tail ended";
      try {
        msg = "Live tail ended: " + JSON.parse(ev.data).error;
      } catch (e) { /* keep the default */ }
      statusEl.textContent = msg;
      liveBox.setAttribute("data-state", "ended");
    });
    es.onerror = function () {
      if (source === es && es.readyState === EventSource.CLOSED) {
        showError("The live tail was refused or lost; turn it off and on to retry.");
      }
    };
  }

  // --- wiring -------------------------------------------------------------------

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    run();
  });
  rangeSel.addEventListener("change", function () {
    if (rangeSel.value !== "custom") {
      startInput.value = "";
      endInput.value = "";
    }
    run();
  });
  moreBtn.addEventListener("click", loadMore);
  liveBox.addEventListener("change", function () {
    if (liveBox.checked) startLive();
    else stopLive();
  });
  window.addEventListener("resize", function () {
    if (plot) plot.setSize({ width: Math.max(chartEl.clientWidth, 300), height: 160 });
  });
  run();
})();
