/* evolve report: sortable tables. The page is complete without this script; it only adds
   click-to-sort headers and an initial sort from the URL (?sort=KEY&order=asc|desc&table=ID). */
(function () {
  "use strict";

  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
    if (!numeric) { return raw.toLowerCase(); }
    if (raw === "") { return null; }
    var number = parseFloat(raw);
    return isNaN(number) ? null : number;
  }

  function sortTable(table, index, descending) {
    var headers = table.tHead.rows[0].cells;
    var numeric = headers[index].getAttribute("data-type") === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      if (x === null || y === null) { return (x === null) - (y === null); } /* missing values last */
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(headers, function (th) { th.removeAttribute("aria-sort"); });
    headers[index].setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function makeSortable(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.title = "sort by this column";
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener("click", function () {
        var current = th.getAttribute("aria-sort");
        var descending = current ? current === "ascending" : th.getAttribute("data-best") === "high";
        sortTable(table, index, descending);
      });
    });
    table.setAttribute("data-sortable", "ready");
  }

  function sortFromUrl() {
    var params = new URLSearchParams(window.location.search);
    var key = params.get("sort");
    var table = document.getElementById(params.get("table") || "candidates-table");
    if (!key || !table) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      if (th.getAttribute("data-key") === key) { sortTable(table, index, params.get("order") === "desc"); }
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
  sortFromUrl();
}());
