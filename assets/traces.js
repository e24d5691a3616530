// The trace pages: the duration scatter of the search results (uPlot; a click
// opens the trace), the operation list that follows the chosen service, and the
// collapsible subtrees of the waterfall. Telemetry text is only ever inserted
// with textContent, never as HTML.
(function () {
  "use strict";

  // --- search: operations follow the service --------------------------------
  var svc = document.getElementById("tr-service");
  var opSel = document.getElementById("tr-operation");
  if (svc && opSel) {
    svc.addEventListener("change", function () {
      while (opSel.options.length > 1) opSel.remove(1);
      if (!svc.value) return;
      fetch("/api/services/" + encodeURIComponent(svc.value) + "/operations")
        .then(function (r) { return r.json(); })
        .then(function (body) {
          (body.data || []).forEach(function (name) {
            var o = document.createElement("option");
            o.value = name;
            o.textContent = name;
            opSel.appendChild(o);
          });
        })
        .catch(function () {});
    });
  }

  // --- search: the duration scatter ----------------------------------------
  var sc = document.getElementById("trace-scatter");
  if (sc && window.uPlot) {
    var cols;
    try { cols = JSON.parse(sc.getAttribute("data-points") || "[]"); } catch (e) { cols = []; }
    if (cols.length === 4 && cols[0].length > 0) {
      var ids = cols[2], errs = cols[3];
      var ok = cols[1].map(function (v, i) { return errs[i] ? null : v; });
      var bad = cols[1].map(function (v, i) { return errs[i] ? v : null; });
      var width = Math.max(300, sc.clientWidth || 900);
      var plot = new uPlot({
        width: width,
        height: 220,
        cursor: { points: { size: 10 }, dataIdx: function (u, seriesIdx, hoveredIdx) { return hoveredIdx; } },
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{}, { label: "duration (ms)", size: 60 }],
        series: [
          {},
          { label: "trace", stroke: "#2f6fde", paths: function () { return null; }, points: { show: true, size: 7, fill: "#2f6fde" } },
          { label: "trace with errors", stroke: "#c0262d", paths: function () { return null; }, points: { show: true, size: 7, fill: "#c0262d" } },
        ],
      }, [cols[0], ok, bad], sc);
      sc.uplot = plot; // for tests and the console
      plot.over.style.cursor = "pointer";
      plot.over.setAttribute("data-testid", "scatter-area");
      // A click opens the trace of the nearest point within 24 px.
      plot.over.addEventListener("click", function (ev) {
        var best = -1, bestD = 24 * 24;
        for (var i = 0; i < ids.length; i++) {
          var dx = plot.valToPos(cols[0][i], "x") - ev.offsetX;
          var dy = plot.valToPos(cols[1][i], "y") - ev.offsetY;
          if (dx * dx + dy * dy < bestD) { bestD = dx * dx + dy * dy; best = i; }
        }
        if (best >= 0) window.location.href = "/traces/" + encodeURIComponent(ids[best]);
      });
    }
  }

  // --- trace view: collapsible subtrees ------------------------------------
  var wf = document.getElementById("waterfall");
  if (wf) {
    var rows = Array.prototype.slice.call(wf.querySelectorAll(".wf-row"));
    var byParent = {};
    rows.forEach(function (r) {
      var p = r.getAttribute("data-parent");
      (byParent[p] = byParent[p] || []).push(r);
    });
    function setHidden(id, hidden) {
      (byParent[id] || []).forEach(function (c) {
        c.classList.toggle("wf-hidden", hidden);
        var collapsed = c.getAttribute("data-collapsed") === "true";
        setHidden(c.getAttribute("data-span"), hidden || collapsed);
      });
    }
    rows.forEach(function (r) {
      var b = r.querySelector(".wf-toggle");
      if (!b || b.classList.contains("leaf")) return;
      b.addEventListener("click", function (ev) {
        ev.preventDefault();
        ev.stopPropagation();
        var collapsed = r.getAttribute("data-collapsed") !== "true";
        r.setAttribute("data-collapsed", String(collapsed));
        b.textContent = collapsed ? "▸" : "▾";
        b.setAttribute("aria-label", collapsed ? "expand" : "collapse");
        setHidden(r.getAttribute("data-span"), collapsed);
      });
    });
  }
})();
