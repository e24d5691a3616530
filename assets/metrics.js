// The Metrics page: runs PromQL through the Prometheus HTTP API and draws the
// result as a uPlot chart or a table. Telemetry text is only ever inserted with
// textContent, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("metrics");
  if (!root) return;

  var form = document.getElementById("prom-form");
  var input = document.getElementById("prom-q");
  var ac = document.getElementById("prom-ac");
  var rangeSel = document.getElementById("prom-range");
  var endInput = document.getElementById("prom-end");
  var stepInput = document.getElementById("prom-step");
  var tabInput = document.getElementById("prom-tab");
  var statusEl = document.getElementById("prom-status");
  var errorEl = document.getElementById("prom-error");
  var warnEl = document.getElementById("prom-warn");
  var graphView = document.getElementById("prom-graph");
  var tableView = document.getElementById("prom-table");
  var chartEl = document.getElementById("prom-chart");
  var legendEl = document.getElementById("prom-legend");
  var truncEl = document.getElementById("prom-truncated");
  var tbody = document.getElementById("prom-tbody");
  var maxSeries = parseInt(root.getAttribute("data-max-series"), 10) || 50;
  var bandBox = document.getElementById("prom-band");
  var bandNote = document.getElementById("prom-band-note");

  var RANGES = { "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "3h": 10800, "6h": 21600, "12h": 43200, "1d": 86400, "2d": 172800, "7d": 604800 };
  var MAX_POINTS = 11000;
  var COLORS = ["#2f6fde", "#e8590c", "#12805c", "#c0262d", "#7048e8", "#0c8599", "#d6336c", "#5c940d", "#f59f00", "#495057"];
  var FUNCS = ["rate", "irate", "increase", "sum", "avg", "min", "max", "count", "topk", "bottomk", "quantile", "histogram_quantile",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "last_over_time", "delta", "deriv",
    "abs", "clamp_min", "clamp_max", "round", "absent", "label_replace", "predict_linear", "histogram_count", "histogram_sum", "time"];

  var plot = null;
  var runSeq = 0;

  // --- small helpers -------------------------------------------------------

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function parseDuration(s) {
    if (/^\d+(\.\d+)?$/.test(s)) return parseFloat(s);
    var re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g, total = 0, m, used = 0;
    var unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
    while ((m = re.exec(s)) !== null) {
      total += parseFloat(m[1]) * unit[m[2]];
      used += m[0].length;
    }
    if (used !== s.length || total <= 0) throw new Error('cannot parse step "' + s + '": use a duration such as 15s, 1m or 1h');
    return total;
  }

  function endTime() {
    var v = endInput.value.trim();
    if (!v) return Date.now() / 1000;
    if (/^\d+(\.\d+)?$/.test(v)) return parseFloat(v);
    var t = Date.parse(v);
    if (isNaN(t)) throw new Error('cannot parse end time "' + v + '": use RFC 3339 (2026-01-01T12:00:00Z) or Unix seconds');
    return t / 1000;
  }

  function seriesName(metric) {
    var name = metric.__name__ || "";
    var parts = [];
    Object.keys(metric).sort().forEach(function (k) {
      if (k !== "__name__") parts.push(k + '="' + metric[k] + '"');
    });
    if (!parts.length) return name || "{}";
    return name + "{" + parts.join(", ") + "}";
  }

  function fmtValue(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "string") return v;
    if (!isFinite(v)) return String(v);
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return String(Math.round(v * 1e4) / 1e4);
  }

  // api calls the Prometheus API with a form-encoded POST and resolves to the
  // envelope, or rejects with the API's error text.
  function api(path, params) {
    var body = new URLSearchParams();
    Object.keys(params).forEach(function (k) { body.append(k, params[k]); });
    return fetch(path, { method: "POST", body: body, credentials: "same-origin" }).then(function (resp) {
      return resp.text().then(function (txt) {
        var j;
        try { j = JSON.parse(txt); } catch (e) { throw new Error("HTTP " + resp.status + ": " + txt.slice(0, 300)); }
        if (j.status !== "success") throw new Error((j.errorType ? j.errorType + ": " : "") + (j.error || "HTTP " + resp.status));
        return j;
      });
    });
  }

  function showError(msg) {
    errorEl.textContent = msg;
    errorEl.hidden = false;
  }

  function showWarnings(j) {
    var list = (j.warnings || []).concat(j.infos || []);
    warnEl.textContent = list.join("\n");
    warnEl.hidden = list.length === 0;
  }

  // --- running queries -----------------------------------------------------

  function currentTab() { return tabInput.value === "table" ? "table" : "graph"; }

  function updateURL(push) {
    var p = new URLSearchParams();
    p.set("q", input.value);
    p.set("range", rangeSel.value);
    if (endInput.value.trim()) p.set("end", endInput.value.trim());
    if (stepInput.value.trim()) p.set("step", stepInput.value.trim());
    if (currentTab() === "table") p.set("tab", "table");
    if (bandBox && bandBox.checked) p.set("band", "1");
    var url = "/graph?" + p.toString();
    if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
  }

  function run(push) {
    errorEl.hidden = true;
    warnEl.hidden = true;
    closeAC();
    var q = input.value.trim();
    if (!q) {
      showError("Enter a PromQL expression.");
      return;
    }
    var range = RANGES[rangeSel.value] || 3600, end, step;
    try {
      end = endTime();
      step = stepInput.value.trim() ? parseDuration(stepInput.value.trim()) : Math.max(1, Math.ceil(range / 250));
    } catch (e) {
      showError(e.message);
      return;
    }
    if (range / step > MAX_POINTS) {
      showError("This range at this step needs " + Math.ceil(range / step) + " points per series; the most is " + MAX_POINTS + ". Increase the step.");
      return;
    }
    updateURL(push);
    var seq = ++runSeq, t0 = performance.now();
    statusEl.textContent = "Running…";
    var done = function (j, what) {
      if (seq !== runSeq) return false;
      statusEl.textContent = what + " · " + Math.round(performance.now() - t0) + " ms";
      showWarnings(j);
      return true;
    };
    var failed = function (e) {
      if (seq !== runSeq) return;
      statusEl.textContent = "";
      showError(e.message || String(e));
    };
    if (currentTab() === "graph") {
      api("/api/v1/query_range", { query: q, start: (end - range).toFixed(3), end: end.toFixed(3), step: String(step) }).then(function (j) {
        if (!done(j, j.data.result.length + " series")) return;
        if (!bandBox || !bandBox.checked) { drawChart(j.data, end - range, end, step); return; }
        return fetchBand(j.data, q, end - range, end, step).then(function (overlay) {
          if (seq === runSeq) drawChart(j.data, end - range, end, step, overlay);
        });
      }).catch(failed);
    } else {
      api("/api/v1/query", { query: q, time: end.toFixed(3) }).then(function (j) {
        var n = Array.isArray(j.data.result) && j.data.resultType !== "scalar" && j.data.resultType !== "string" ? j.data.result.length : 1;
        if (done(j, n + " result" + (n === 1 ? "" : "s"))) drawTable(j.data);
      }).catch(failed);
    }
  }

  // --- expected band ---------------------------------------------------------

  // bandSelector names the detector's series for one charted series: the
  // series' labels, with its metric name in anomaly_metric. A series without a
  // name (rate(x[5m])) takes the metric named at the start of the query.
  function bandSelector(outName, metric, q) {
    var name = metric.__name__;
    if (!name) {
      var m = /^\s*(?:rate|irate)\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(q);
      if (!m) return null;
      name = m[1];
    }
    var parts = ['__name__="' + outName + '"', "anomaly_metric=" + JSON.stringify(name)];
    Object.keys(metric).sort().forEach(function (k) {
      if (k !== "__name__" && k !== "anomaly_metric") parts.push(k + "=" + JSON.stringify(metric[k]));
    });
    return "{" + parts.join(", ") + "}";
  }

  // fetchBand queries the expected band and anomaly score of the one series
  // charted; it resolves to null (with a note saying why) when there is none.
  function fetchBand(data, q, start, end, step) {
    var floats = data.resultType === "matrix" ? data.result.filter(function (s) { return s.values; }) : [];
    var note = function (msg) { bandNote.textContent = msg; bandNote.hidden = false; return null; };
    if (floats.length !== 1) return Promise.resolve(note("The expected band is drawn when the query returns one series; this one returns " + floats.length + "."));
    var metric = floats[0].metric;
    var sels = ["outpost_expected_lower", "outpost_expected_upper", "outpost_anomaly_score"].map(function (n) { return bandSelector(n, metric, q); });
    if (!sels[0]) return Promise.resolve(note("The expected band needs a query that names the metric, such as a selector or rate(name[5m])."));
    var win = Math.max(300, Math.ceil(step)) + "s";
    var queries = [sels[0], sels[1], "max_over_time(" + sels[2] + "[" + win + "])"];
    return Promise.all(queries.map(function (qq) {
      return api("/api/v1/query_range", { query: qq, start: start.toFixed(3), end: end.toFixed(3), step: String(step) }).then(function (j) {
        var r = j.data.result || [];
        return r.length === 1 ? r[0].values : null;
      });
    })).then(function (cols) {
      if (!cols[0] || !cols[1]) return note("No expected band is stored for this series in this range yet: the detector writes one after about 50 samples.");
      return { lower: cols[0], upper: cols[1], score: cols[2] || [] };
    });
  }

  // --- chart ---------------------------------------------------------------

  function drawChart(data, start, end, step, overlay) {
    if (plot) { plot.destroy(); plot = null; }
    if (bandNote && !overlay && !(bandBox && bandBox.checked)) bandNote.hidden = true;
    clear(chartEl);
    clear(legendEl);
    truncEl.hidden = true;
    var result = data.resultType === "matrix" ? data.result : [];
    var floats = result.filter(function (s) { return s.values; });
    var hists = result.length - floats.length;
    var notes = [];
    if (floats.length > maxSeries) notes.push("Showing " + maxSeries + " of " + floats.length + " series; narrow the query (for example with topk) to see the rest.");
    if (hists > 0) notes.push(hists + " native histogram series are not drawn: chart them with histogram_quantile(), histogram_count() or histogram_sum().");
    if (notes.length) { truncEl.textContent = notes.join(" "); truncEl.hidden = false; }
    floats = floats.slice(0, maxSeries);
    if (!floats.length) {
      chartEl.appendChild(el("p", "muted", "No data points in this range."));
      return;
    }
    var xs = [], index = {};
    for (var t = start, i = 0; t <= end + 1e-9; t += step, i++) {
      var k = Math.round(t * 1000);
      xs.push(k / 1000);
      index[k] = i;
    }
    var cols = [xs];
    floats.forEach(function (s) {
      var ys = new Array(xs.length).fill(null);
      s.values.forEach(function (p) {
        var i = index[Math.round(p[0] * 1000)];
        if (i !== undefined) ys[i] = parseFloat(p[1]);
      });
      cols.push(ys);
    });
    var names = floats.map(function (s) { return seriesName(s.metric); });
    var series = [{}].concat(names.map(function (n, i) {
      return { label: n, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } };
    }));
    var bands = [], high = [];
    if (overlay) {
      var col = function (vals) {
        var ys = new Array(xs.length).fill(null);
        vals.forEach(function (p) {
          var i = index[Math.round(p[0] * 1000)];
          if (i !== undefined) ys[i] = parseFloat(p[1]);
        });
        return ys;
      };
      cols.push(col(overlay.lower), col(overlay.upper));
      series.push({ label: "expected lower", stroke: "#868e96", width: 1, dash: [4, 4], points: { show: false } },
        { label: "expected upper", stroke: "#868e96", width: 1, dash: [4, 4], points: { show: false } });
      bands.push({ series: [cols.length - 1, cols.length - 2], fill: "rgba(134,142,150,0.15)" });
      col(overlay.score).forEach(function (v, i) { if (v !== null && v >= 0.5) high.push(i); });
      bandNote.textContent = "Dashed: the expected band from the anomaly detector (±3 noise widths). " +
        (high.length ? "Shaded red: " + high.length + " anomalous points (score ≥ 0.5)." : "No anomalous points in this range.");
      bandNote.hidden = false;
    }
    var shade = function (u) {
      if (!high.length) return;
      var ctx = u.ctx;
      ctx.save();
      ctx.fillStyle = "rgba(192,38,45,0.15)";
      high.forEach(function (i) {
        var x0 = u.valToPos(xs[i] - step / 2, "x", true), x1 = u.valToPos(xs[i] + step / 2, "x", true);
        ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
      });
      ctx.restore();
    };
    var items = [];
    var setValues = function (idx) {
      items.forEach(function (it, i) {
        var col = cols[i + 1];
        var v = null;
        if (idx === null || idx === undefined) {
          for (var j = col.length - 1; j >= 0; j--) if (col[j] !== null) { v = col[j]; break; }
        } else {
          v = col[idx];
        }
        it.val.textContent = fmtValue(v);
      });
    };
    plot = new uPlot({
      width: Math.max(320, chartEl.clientWidth || 800),
      height: 320,
      series: series,
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [{}, { size: 70, values: function (u, vals) { return vals.map(fmtValue); } }],
      bands: bands,
      hooks: { setCursor: [function (u) { setValues(u.cursor.idx); }], draw: [shade] },
    }, cols, chartEl);
    chartEl.setAttribute("data-anomalous-points", String(high.length));
    chartEl.setAttribute("data-band", overlay ? "1" : "0");
    names.forEach(function (n, i) {
      var li = el("li");
      li.setAttribute("data-testid", "legend-item");
      li.title = "Click to hide or show this series";
      var sw = el("span", "swatch");
      sw.style.background = COLORS[i % COLORS.length];
      var name = el("span", "name", n);
      var val = el("span", "val");
      val.setAttribute("data-testid", "legend-value");
      li.appendChild(sw);
      li.appendChild(name);
      li.appendChild(val);
      li.addEventListener("click", function () {
        var show = !plot.series[i + 1].show;
        plot.setSeries(i + 1, { show: show });
        li.classList.toggle("off", !show);
      });
      legendEl.appendChild(li);
      items.push({ li: li, val: val });
    });
    setValues(null);
  }

  window.addEventListener("resize", function () {
    if (plot) plot.setSize({ width: Math.max(320, chartEl.clientWidth), height: 320 });
  });

  // --- table ---------------------------------------------------------------

  function row(series, value) {
    var tr = el("tr");
    tr.setAttribute("data-testid", "result-row");
    var a = el("td", "series", series);
    var b = el("td", "num", value);
    tr.appendChild(a);
    tr.appendChild(b);
    tbody.appendChild(tr);
  }

  function histText(h) {
    return "count " + h.count + ", sum " + h.sum + (h.buckets ? ", " + h.buckets.length + " buckets" : "");
  }

  function drawTable(data) {
    clear(tbody);
    var r = data.result;
    switch (data.resultType) {
    case "scalar":
    case "string":
      row("scalar" === data.resultType ? "scalar" : "string", r[1]);
      break;
    case "vector":
      r.forEach(function (s) { row(seriesName(s.metric), s.value ? s.value[1] : histText(s.histogram[1])); });
      break;
    case "matrix":
      r.forEach(function (s) {
        var vals = (s.values || []).map(function (p) { return p[1] + " @" + p[0]; });
        (s.histograms || []).forEach(function (p) { vals.push(histText(p[1]) + " @" + p[0]); });
        row(seriesName(s.metric), vals.join("\n"));
      });
      break;
    }
    if (!tbody.firstChild) {
      var tr = el("tr"), td = el("td", "muted", "Empty result.");
      td.colSpan = 2;
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
  }

  // --- tabs, form, explore -------------------------------------------------

  function setTab(tab) {
    tabInput.value = tab;
    graphView.hidden = tab !== "graph";
    tableView.hidden = tab !== "table";
    document.getElementById("prom-tab-graph").classList.toggle("active", tab === "graph");
    document.getElementById("prom-tab-table").classList.toggle("active", tab === "table");
  }

  ["prom-tab-graph", "prom-tab-table"].forEach(function (id) {
    document.getElementById(id).addEventListener("click", function (e) {
      setTab(e.currentTarget.getAttribute("data-tab"));
      if (input.value.trim()) run(false);
    });
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    run(true);
  });
  rangeSel.addEventListener("change", function () { if (input.value.trim()) run(false); });
  if (bandBox) bandBox.addEventListener("change", function () { if (input.value.trim()) run(false); });

  var filter = document.getElementById("prom-explore-filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var f = filter.value.toLowerCase();
      document.querySelectorAll('[data-testid="explore-row"]').forEach(function (tr) {
        tr.hidden = f !== "" && tr.getAttribute("data-name").toLowerCase().indexOf(f) < 0;
      });
    });
  }
  document.querySelectorAll('[data-testid="explore-link"]').forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      input.value = a.getAttribute("data-query");
      window.scrollTo(0, 0);
      run(true);
    });
  });

  window.addEventListener("popstate", function () {
    var p = new URLSearchParams(location.search);
    input.value = p.get("q") || "";
    if (p.get("range")) rangeSel.value = p.get("range");
    endInput.value = p.get("end") || "";
    stepInput.value = p.get("step") || "";
    if (bandBox) bandBox.checked = p.get("band") === "1";
    setTab(p.get("tab") === "table" ? "table" : "graph");
    if (input.value.trim()) run(false);
  });

  // --- autocomplete ----------------------------------------------------------

  var cache = {};
  var acItems = [], acActive = -1, acSeq = 0, acCtx = null;

  function cached(key, path, params) {
    if (!cache[key]) {
      cache[key] = api(path, params).then(function (j) { return j.data || []; }, function () { delete cache[key]; return []; });
    }
    return cache[key];
  }

  // context finds what is being typed at the cursor: a metric name, a label
  // name inside braces, or a label value inside quotes.
  function context() {
    var text = input.value.slice(0, input.selectionStart);
    var open = text.lastIndexOf("{"), close = text.lastIndexOf("}");
    if (open > close) {
      var before = text.slice(0, open).match(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/);
      var metric = before ? before[1] : "";
      var inner = text.slice(open + 1);
      var mv = inner.match(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)$/);
      if (mv) return { kind: "value", label: mv[1], prefix: mv[3], metric: metric };
      var ml = inner.match(/(?:^|,)\s*([a-zA-Z_][a-zA-Z0-9_]*)?$/);
      if (ml) return { kind: "label", prefix: ml[1] || "", metric: metric };
      return null;
    }
    var quotes = (text.match(/"/g) || []).length;
    if (quotes % 2 === 1) return null;
    var mm = text.match(/([a-zA-Z_:][a-zA-Z0-9_:]*)$/);
    if (mm) return { kind: "metric", prefix: mm[1] };
    return null;
  }

  function closeAC() {
    ac.hidden = true;
    clear(ac);
    acItems = [];
    acActive = -1;
    acSeq++;
  }

  function suggest() {
    var ctx = context();
    if (!ctx) { closeAC(); return; }
    var seq = ++acSeq;
    var p;
    var match = ctx.metric ? { "match[]": ctx.metric } : {};
    if (ctx.kind === "metric") {
      p = cached("names", "/api/v1/label/__name__/values", {}).then(function (names) {
        var out = names.map(function (n) { return { text: n, kind: "metric" }; });
        return out.concat(FUNCS.map(function (f) { return { text: f, kind: "function" }; }));
      });
    } else if (ctx.kind === "label") {
      p = cached("labels:" + ctx.metric, "/api/v1/labels", match).then(function (ls) {
        return ls.filter(function (l) { return l !== "__name__"; }).map(function (l) { return { text: l, kind: "label" }; });
      });
    } else {
      p = cached("values:" + ctx.label + ":" + ctx.metric, "/api/v1/label/" + encodeURIComponent(ctx.label) + "/values", match).then(function (vs) {
        return vs.map(function (v) { return { text: v, kind: "value" }; });
      });
    }
    p.then(function (list) {
      if (seq !== acSeq) return;
      var pre = ctx.prefix.toLowerCase();
      var starts = [], contains = [];
      list.forEach(function (it) {
        var t = it.text.toLowerCase();
        if (t === pre) return;
        if (t.indexOf(pre) === 0) starts.push(it); else if (pre && t.indexOf(pre) > 0) contains.push(it);
      });
      var items = starts.concat(contains).slice(0, 30);
      if (!items.length || (ctx.kind === "metric" && !pre)) { closeAC(); return; }
      showAC(ctx, items);
    });
  }

  function showAC(ctx, items) {
    clear(ac);
    acCtx = ctx;
    acItems = items;
    acActive = 0;
    items.forEach(function (it, i) {
      var li = el("li");
      li.setAttribute("role", "option");
      li.setAttribute("data-testid", "autocomplete-item");
      li.appendChild(document.createTextNode(it.text));
      li.appendChild(el("span", "kind", it.kind));
      li.addEventListener("mousedown", function (e) {
        e.preventDefault();
        accept(i);
      });
      ac.appendChild(li);
    });
    ac.hidden = false;
    highlight();
  }

  function highlight() {
    Array.prototype.forEach.call(ac.children, function (li, i) {
      li.classList.toggle("active", i === acActive);
      if (i === acActive) li.scrollIntoView({ block: "nearest" });
    });
  }

  function accept(i) {
    var it = acItems[i], ctx = acCtx;
    if (!it || !ctx) return;
    var pos = input.selectionStart;
    var head = input.value.slice(0, pos - ctx.prefix.length), tail = input.value.slice(pos);
    var ins = it.text;
    if (it.kind === "function") ins += "(";
    if (it.kind === "label") ins += '="';
    if (it.kind === "value") {
      ins = ins.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
      if (tail.charAt(0) !== '"') ins += '"';
    }
    input.value = head + ins + tail;
    var c = head.length + ins.length;
    input.setSelectionRange(c, c);
    closeAC();
    input.focus();
    if (it.kind === "label") suggest();
  }

  input.addEventListener("input", suggest);
  input.addEventListener("blur", function () { setTimeout(closeAC, 100); });
  input.addEventListener("keydown", function (e) {
    if (!ac.hidden && acItems.length) {
      if (e.key === "ArrowDown") { acActive = (acActive + 1) % acItems.length; highlight(); e.preventDefault(); return; }
      if (e.key === "ArrowUp") { acActive = (acActive - 1 + acItems.length) % acItems.length; highlight(); e.preventDefault(); return; }
      if (e.key === "Tab" || (e.key === "Enter" && !e.shiftKey && acActive >= 0 && !e.ctrlKey)) { accept(acActive); e.preventDefault(); return; }
      if (e.key === "Escape") { closeAC(); e.preventDefault(); return; }
    }
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      run(true);
    }
  });

  setTab(currentTab());
  if (input.value.trim()) run(false);
})();
