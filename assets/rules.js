// The rule group editor: validate, preview, save and delete through the rules
// API. Text from the server is inserted with textContent only.
(function () {
  "use strict";
  var editor = document.querySelector('[data-testid="rule-editor"]');
  if (!editor) {
    return;
  }
  var body = document.getElementById("rule-body");
  var nameInput = document.getElementById("rule-group-name");
  var status = document.getElementById("rule-status");
  var errList = document.getElementById("rule-errors");
  var previewOut = document.getElementById("rule-preview-result");
  var gutter = document.getElementById("rule-gutter");
  var errLines = {};

  // renderGutter numbers the lines of the text area, the lines with errors
  // marked.
  function renderGutter() {
    clear(gutter);
    var n = body.value.split("\n").length;
    for (var i = 1; i <= n; i++) {
      var span = document.createElement("span");
      span.textContent = String(i);
      if (errLines[i]) {
        span.className = "err";
        span.setAttribute("data-testid", "rule-gutter-error");
        span.title = errLines[i];
      }
      gutter.appendChild(span);
    }
    gutter.scrollTop = body.scrollTop;
  }
  body.addEventListener("input", renderGutter);
  body.addEventListener("scroll", function () { gutter.scrollTop = body.scrollTop; });

  function clear(el) {
    while (el.firstChild) {
      el.removeChild(el.firstChild);
    }
  }

  function say(text, ok) {
    status.textContent = text;
    status.className = ok ? "ok" : "error";
  }

  // showErrors lists rule errors, each with its line in the text area; a click
  // selects that line.
  function showErrors(errs) {
    clear(errList);
    errLines = {};
    (errs || []).forEach(function (e) {
      var li = document.createElement("li");
      li.setAttribute("data-testid", "rule-error");
      var where = e.line ? "line " + e.line + (e.column ? ":" + e.column : "") + ": " : "";
      li.textContent = where + e.error;
      if (e.line) {
        li.setAttribute("data-line", String(e.line));
        li.style.cursor = "pointer";
        li.addEventListener("click", function () { selectLine(e.line); });
        errLines[e.line] = e.error;
      }
      errList.appendChild(li);
    });
    renderGutter();
  }

  function selectLine(n) {
    var lines = body.value.split("\n");
    var start = 0;
    for (var i = 0; i < n - 1 && i < lines.length; i++) {
      start += lines[i].length + 1;
    }
    var end = start + (lines[n - 1] || "").length;
    body.focus();
    body.setSelectionRange(start, end);
  }

  function call(method, url, payload) {
    var init = { method: method, headers: { "Accept": "application/json" } };
    if (payload !== undefined) {
      init.body = payload;
      init.headers["Content-Type"] = "application/yaml";
    }
    return fetch(url, init).then(function (resp) {
      return resp.json().then(function (j) { return { code: resp.status, json: j }; },
        function () { return { code: resp.status, json: { status: "error", error: "HTTP " + resp.status } }; });
    });
  }

  function groupURL() {
    return "/api/v1/rules/groups/" + encodeURIComponent(nameInput.value.trim());
  }

  renderGutter();

  document.getElementById("rule-validate").addEventListener("click", function () {
    say("Validating…", true);
    call("POST", "/api/v1/rules/validate", body.value).then(function (r) {
      if (r.json.status !== "success") {
        showErrors([]);
        say(r.json.error || "validation failed", false);
        return;
      }
      showErrors(r.json.data.errors);
      if (r.json.data.valid) {
        say("Valid: " + r.json.data.groups.join(", "), true);
      } else {
        say("Invalid: " + r.json.data.errors.length + " error(s)", false);
      }
    }, function (err) { say("Cannot validate: " + err, false); });
  });

  document.getElementById("rule-save").addEventListener("click", function () {
    if (!nameInput.value.trim()) {
      say("Give the group a name.", false);
      return;
    }
    say("Saving…", true);
    call("PUT", groupURL(), body.value).then(function (r) {
      if (r.json.status === "success") {
        showErrors([]);
        say("Saved.", true);
        window.location.href = "/rules";
        return;
      }
      showErrors(r.json.data && r.json.data.errors);
      say(r.json.error || "cannot save", false);
    }, function (err) { say("Cannot save: " + err, false); });
  });

  var del = document.getElementById("rule-delete");
  if (del) {
    del.addEventListener("click", function () {
      if (!window.confirm("Delete the rule group " + nameInput.value + "?")) {
        return;
      }
      call("DELETE", groupURL()).then(function (r) {
        if (r.json.status === "success") {
          window.location.href = "/rules";
          return;
        }
        say(r.json.error || "cannot delete", false);
      }, function (err) { say("Cannot delete: " + err, false); });
    });
  }

  document.getElementById("rule-preview").addEventListener("click", function () {
    var expr = document.getElementById("rule-preview-expr").value.trim();
    clear(previewOut);
    if (!expr) {
      previewOut.textContent = "Type an expression.";
      return;
    }
    call("GET", "/api/v1/rules/preview?expr=" + encodeURIComponent(expr)).then(function (r) {
      if (r.json.status !== "success") {
        var p = document.createElement("p");
        p.className = "error";
        p.setAttribute("data-testid", "rule-preview-error");
        p.textContent = r.json.error || "preview failed";
        previewOut.appendChild(p);
        return;
      }
      var res = r.json.data.result || [];
      if (r.json.data.resultType === "scalar" || r.json.data.resultType === "string") {
        res = [{ metric: {}, value: r.json.data.result }];
      }
      if (res.length === 0) {
        var none = document.createElement("p");
        none.className = "muted";
        none.setAttribute("data-testid", "rule-preview-empty");
        none.textContent = "No series: an alert with this expression would be inactive now.";
        previewOut.appendChild(none);
        return;
      }
      var table = document.createElement("table");
      table.setAttribute("data-testid", "rule-preview-table");
      res.forEach(function (s) {
        var tr = document.createElement("tr");
        var td1 = document.createElement("td");
        var names = Object.keys(s.metric || {}).sort();
        td1.textContent = "{" + names.map(function (k) { return k + '="' + s.metric[k] + '"'; }).join(", ") + "}";
        var td2 = document.createElement("td");
        td2.className = "num";
        td2.textContent = s.value ? s.value[1] : "";
        tr.appendChild(td1);
        tr.appendChild(td2);
        table.appendChild(tr);
      });
      previewOut.appendChild(table);
    }, function (err) { previewOut.textContent = "Cannot preview: " + err; });
  });
})();
