// Live refresh of the admin dashboard: fetch the JSON snapshot every few seconds and update the
// numbers and the import progress bars in place (no page reload, no framework).
(function () {
  "use strict";
  var root = document.getElementById("brx-dashboard");
  if (!root) { return; }
  var url = root.getAttribute("data-url");
  var PERIOD_MS = 3000;

  function lookup(data, path) {
    return path.split(".").reduce(function (obj, key) {
      if (obj === null || obj === undefined) { return undefined; }
      return obj[key];
    }, data);
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function renderImports(imports) {
    var body = document.querySelector("#brx-imports tbody");
    if (!body || !Array.isArray(imports)) { return; }
    body.textContent = "";
    if (imports.length === 0) { body.appendChild(document.createElement("tr")).appendChild(cell("none running")); return; }
    imports.forEach(function (imp) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-op", imp.id);
      tr.appendChild(cell("#" + imp.id + " " + imp.kind));
      tr.appendChild(cell(imp.seller_id));
      var barCell = document.createElement("td");
      var bar = document.createElement("span"); bar.className = "brx-bar";
      var fill = document.createElement("span"); fill.style.width = (imp.percent || 0) + "%";
      bar.appendChild(fill); barCell.appendChild(bar); tr.appendChild(barCell);
      var progress = cell(imp.done + " / " + (imp.total === null ? "?" : imp.total) + " (" +
                          (imp.percent === null ? "?" : imp.percent) + "%)");
      progress.className = "brx-progress";
      tr.appendChild(progress);
      body.appendChild(tr);
    });
  }

  function apply(data) {
    root.querySelectorAll("[data-dash]").forEach(function (el) {
      var value = lookup(data, el.getAttribute("data-dash"));
      if (value !== undefined && value !== null) { el.textContent = String(value); }
    });
    var errors = root.querySelector("[data-dash-errors]");
    if (errors) {
      errors.textContent = Object.keys(data.errors || {}).map(function (k) { return k + ": " + data.errors[k]; }).join(". ");
    }
    renderImports(data.imports);
    root.setAttribute("data-refreshed", data.generated_at);
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(apply)
      .catch(function () { /* keep the last numbers; the next tick tries again */ })
      .then(function () { window.setTimeout(refresh, PERIOD_MS); });
  }
  window.setTimeout(refresh, PERIOD_MS);
}());
