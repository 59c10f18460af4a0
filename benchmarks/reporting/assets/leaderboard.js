// Sorting, filtering and plot tooltips of the static leaderboard page (no libraries, no server).
"use strict";

function cellValue(row, index) {
  const value = parseFloat(row.cells[index].dataset.value);
  return Number.isNaN(value) ? null : value;
}

function sortTable(header) {
  const table = header.closest("table");
  const index = Array.from(header.parentNode.children).indexOf(header);
  const descending = header.getAttribute("aria-sort") !== "descending";
  table.querySelectorAll("th").forEach((th) => th.removeAttribute("aria-sort"));
  header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const numeric = header.dataset.type === "number";
  rows.sort((a, b) => {
    if (!numeric) {
      const order = a.cells[index].textContent.localeCompare(b.cells[index].textContent);
      return descending ? -order : order;
    }
    const x = cellValue(a, index);
    const y = cellValue(b, index);
    if (x === null && y === null) return 0;
    if (x === null) return 1; // rows without a value go last either way
    if (y === null) return -1;
    return descending ? y - x : x - y;
  });
  rows.forEach((row) => body.appendChild(row));
}

function applyFilters(section) {
  const text = section.querySelector("input.filter").value.trim().toLowerCase();
  const hiddenKinds = new Set(
    Array.from(section.querySelectorAll("input.kind-toggle"))
      .filter((box) => !box.checked)
      .map((box) => box.dataset.kind)
  );
  section.querySelectorAll("[data-kind]").forEach((element) => {
    if (element.matches("input.kind-toggle")) return;
    const method = (element.dataset.method || "").toLowerCase();
    const hide = hiddenKinds.has(element.dataset.kind) || (text && !method.includes(text));
    element.classList.toggle("hidden", Boolean(hide));
  });
}

function showTip(event) {
  const tip = document.getElementById("tooltip");
  tip.textContent = event.target.dataset.tip;
  tip.style.left = `${event.clientX + 12}px`;
  tip.style.top = `${event.clientY + 12}px`;
  tip.style.display = "block";
}

function hideTip() {
  document.getElementById("tooltip").style.display = "none";
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.board th").forEach((th) =>
    th.addEventListener("click", () => sortTable(th))
  );
  document.querySelectorAll("section.setting").forEach((section) => {
    section.querySelector("input.filter").addEventListener("input", () => applyFilters(section));
    section.querySelectorAll("input.kind-toggle").forEach((box) =>
      box.addEventListener("change", () => applyFilters(section))
    );
  });
  document.querySelectorAll("svg .point").forEach((point) => {
    point.addEventListener("mousemove", showTip);
    point.addEventListener("mouseleave", hideTip);
  });
});
