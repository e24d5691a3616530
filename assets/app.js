// Outpost UI helpers. Pages work without this file; it only adds conveniences.
(function () {
  "use strict";
  // Skip polling requests while the tab is hidden, so an idle tab costs the
  // server nothing; the next poll after the tab shows again refreshes the page.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var trig = e.detail.elt && e.detail.elt.getAttribute("hx-trigger");
    if (document.hidden && trig && trig.indexOf("every ") === 0) {
      e.preventDefault();
    }
  });
})();
