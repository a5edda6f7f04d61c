(function () {
  "use strict";
  var table = document.getElementById("findings");
  if (!table) {
    return;
  }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById("filter-text");
  var severity = document.getElementById("filter-severity");
  var kind = document.getElementById("filter-kind");
  var shown = document.getElementById("shown");
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function filter() {
    var q = text.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (row) {
      var ok = (!severity.value || row.dataset.severity === severity.value) &&
        (!kind.value || row.dataset.kind === kind.value) &&
        (!q || row.textContent.toLowerCase().indexOf(q) >= 0);
      row.hidden = !ok;
      if (ok) {
        n++;
      }
    });
    shown.textContent = n + " of " + rows.length + " findings shown";
  }

  function key(row, column) {
    var cell = row.cells[column];
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }

  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function sortBy(column) {
    var th = headers[column];
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    headers.forEach(function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    rows.sort(function (a, b) {
      return dir * collator.compare(key(a, column), key(b, column));
    });
    rows.forEach(function (row) {
      body.appendChild(row);
    });
  }

  headers.forEach(function (th, column) {
    var button = document.createElement("button");
    button.type = "button";
    button.title = "Sort by this column";
    while (th.firstChild) {
      button.appendChild(th.firstChild);
    }
    th.appendChild(button);
    button.addEventListener("click", function () {
      sortBy(column);
    });
  });

  document.getElementById("controls").addEventListener("submit", function (e) {
    e.preventDefault();
  });
  text.addEventListener("input", filter);
  severity.addEventListener("change", filter);
  kind.addEventListener("change", filter);
  document.getElementById("controls").hidden = false;
  filter();
})();
