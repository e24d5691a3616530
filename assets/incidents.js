// Incident page: draws each evidence chart (an alert's expression or an
// anomalous series with its expected band) over the incident's time range, with
// a line where the incident opened.
(function () {
  "use strict";
  var COLORS = ["#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#1098ad", "#f08c00", "#5c7cfa"];
  var MAX_SERIES = 10;

  function query(q, start, end, step) {
    var body = new URLSearchParams({ query: q, start: String(start), end: String(end), step: String(step) });
    return fetch("/api/v1/query_range", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.status !== "success") throw new Error(j.error || "query failed");
        return j.data.resultType === "matrix" ? j.data.result.filter(function (s) { return s.values; }) : [];
      });
  }

  function note(box, text, cls) {
    var p = document.createElement("p");
    p.className = cls || "muted";
    p.textContent = text;
    box.appendChild(p);
  }

  function draw(box) {
    var d = box.dataset;
    var start = +d.start, end = +d.end, step = +d.step, mark = +d.mark;
    var qs = [query(d.query, start, end, step)];
    if (d.lower && d.upper) qs.push(query(d.lower, start, end, step), query(d.upper, start, end, step));
    Promise.all(qs).then(function (res) {
      var main = res[0].slice(0, MAX_SERIES);
      if (!main.length) { note(box, "No data points in this range."); return; }
      var xs = [], index = {};
      for (var t = start, i = 0; t <= end; t += step, i++) { xs.push(t); index[t] = i; }
      var col = function (values) {
        var ys = new Array(xs.length).fill(null);
        values.forEach(function (p) {
          var i = index[Math.round(p[0])];
          if (i !== undefined) ys[i] = parseFloat(p[1]);
        });
        return ys;
      };
      var cols = [xs], series = [{}], bands = [];
      main.forEach(function (s, i) {
        cols.push(col(s.values));
        var name = Object.keys(s.metric).filter(function (k) { return k !== "__name__"; })
          .map(function (k) { return k + "=" + s.metric[k]; }).join(", ");
        series.push({ label: name || "value", stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } });
      });
      if (res.length === 3 && res[1].length === 1 && res[2].length === 1) {
        cols.push(col(res[1][0].values), col(res[2][0].values));
        series.push({ label: "expected lower", stroke: "#868e96", width: 1, dash: [4, 4], points: { show: false } },
          { label: "expected upper", stroke: "#868e96", width: 1, dash: [4, 4], points: { show: false } });
        bands.push({ series: [cols.length - 1, cols.length - 2], fill: "rgba(134,142,150,0.15)" });
        box.setAttribute("data-band", "1");
      }
      var opened = function (u) {
        var x = u.valToPos(mark, "x", true), ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = "#c0262d";
        ctx.setLineDash([3, 3]);
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.restore();
      };
      new uPlot({
        width: Math.max(300, box.clientWidth || 460), height: 180, series: series, bands: bands,
        legend: { show: false }, scales: { x: { time: true } }, axes: [{}, { size: 60 }],
        hooks: { draw: [opened] },
      }, cols, box);
      box.setAttribute("data-drawn", String(main.length));
    }).catch(function (e) { note(box, "Cannot draw: " + e.message, "error"); box.setAttribute("data-drawn", "error"); });
  }

  document.querySelectorAll(".ev-chart .plot[data-query]").forEach(draw);
})();
