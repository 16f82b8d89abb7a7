// The children table: one row per place one level down, sortable by any column, each row a link
// to that place's view. Rates show their denominators; rates on few trials are greyed.

import { h } from "./dom.js";
import { SMALL_N, count, perDay, percent, rateSentence } from "./format.js";
import { COLUMNS, METRICS } from "./metrics.js";

export function figureCell(metric, figures, tag = "td") {
  const spec = METRICS[metric];
  const value = figures[metric];
  const data = { metric, value: value ?? "" };
  if (spec.kind === "rate") {
    const n = figures[spec.denominator] || 0;
    const small = n > 0 && n < SMALL_N;
    data.denominator = n;
    return h(tag, { class: `num rate${small ? " small-n" : ""}`, dataset: data,
      title: rateSentence(value, figures[spec.numerator], n, spec.unit) },
      h("span", { class: "value" }, n ? percent(value) : "–"),
      h("span", { class: "of" }, `of ${count(n)}`));
  }
  return h(tag, { class: "num", dataset: data }, count(value));
}

export function paceCell(pace) {
  if (!pace) return h("td", { class: "num muted" }, "no goal");
  const share = pace.share_of_goal;
  const behind = pace.ids < pace.expected_by_now;
  return h("td", { class: `num pace${behind ? " behind" : ""}`, dataset: { metric: "pace", value: share ?? "" },
    title: `${count(pace.ids)} of ${count(pace.goal)} IDs; expected by now ${count(pace.expected_by_now)}; ` +
      (pace.needed_per_day === null ? "deadline passed" : `${perDay(pace.needed_per_day)} a day needed`) },
    h("span", { class: "value" }, percent(share)),
    h("span", { class: "of" }, `of ${count(pace.goal)}`));
}

function sortValue(child, key) {
  if (key === "name") return child.name;
  if (key === "pace") return child.pace ? child.pace.share_of_goal : null;
  return child.figures[key];
}

export function childrenTable({ children, childLevel, sort, descending, onSort, linkTo, flaggedUnits, showPace }) {
  const sorted = [...children].sort((a, b) => {
    const av = sortValue(a, sort);
    const bv = sortValue(b, sort);
    if (av === bv) return a.name.localeCompare(b.name);
    if (av === null || av === undefined) return 1;
    if (bv === null || bv === undefined) return -1;
    const order = typeof av === "string" ? av.localeCompare(bv) : av - bv;
    return descending ? -order : order;
  });
  const header = (key, label, numeric = true) =>
    h("th", { class: `${numeric ? "num" : ""} sortable${sort === key ? " sorted" : ""}`, scope: "col",
      "aria-sort": sort === key ? (descending ? "descending" : "ascending") : "none",
      dataset: { sort: key }, onclick: () => onSort(key) },
      label, sort === key ? (descending ? " ▾" : " ▴") : "");
  const columns = showPace ? [...COLUMNS, "pace"] : COLUMNS;
  return h("table", { class: "children", dataset: { level: childLevel } },
    h("thead", {}, h("tr", {},
      header("name", childLevel[0].toUpperCase() + childLevel.slice(1), false),
      columns.map((key) => header(key, key === "pace" ? "IDs vs goal" : METRICS[key].label)))),
    h("tbody", {}, sorted.map((child) => {
      const flagged = flaggedUnits.has(child.unit);
      const name = child.assigned
        ? h("a", { href: linkTo(child), class: "place-link" }, child.name)
        : h("span", { class: "muted", title: "events without a precinct, counted here so nothing is dropped" },
            `${child.name} (no precinct)`);
      return h("tr", { dataset: { unit: child.unit, level: child.level } },
        h("th", { scope: "row" }, name, flagged ? h("span", { class: "flag-dot", title: "open trend flag" }, "⚑") : null),
        columns.map((key) => (key === "pace" ? paceCell(child.pace) : figureCell(key, child.figures))));
    })));
}
