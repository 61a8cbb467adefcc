// Sort the ranking table by a column when its header is clicked.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("th[data-sort]").forEach((th) => {
    th.addEventListener("click", () => {
      const table = th.closest("table");
      const body = table.tBodies[0];
      const index = Array.from(th.parentNode.children).indexOf(th);
      const numeric = th.dataset.sort === "num";
      const ascending = th.dataset.order !== "asc";
      th.dataset.order = ascending ? "asc" : "desc";
      const value = (row) => row.children[index].textContent.trim();
      const rows = Array.from(body.rows).sort((a, b) => {
        const x = value(a), y = value(b);
        const order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, "zh");
        return ascending ? order : -order;
      });
      rows.forEach((row) => body.appendChild(row));
    });
  });
});
