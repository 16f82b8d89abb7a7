// The dashboard: routing (the URL hash holds the place, window, period and sort), loading a view,
// drawing it, and keeping it live from the server's event stream.

import { ApiError, getJson, openStream, postJson, readJson, setToken, token } from "./api.js";
import { timeChart } from "./chart.js";
import { h, replace } from "./dom.js";
import { behind, clockTime, count, dateTimeFormat, perDay, percent, rateSentence, SMALL_N, windowLabel } from "./format.js";
import { alertFeed, flagFeed, modelPanel } from "./feeds.js";
import { CHARTS, COLUMNS, HEADLINE, METRICS } from "./metrics.js";
import { childrenTable, figureCell } from "./table.js";

const $ = (id) => document.getElementById(id);
const state = {
  view: null, flags: [], principal: null, stopStream: null, loading: null, dirty: false, lastTick: 0,
  streamOpened: false, watchdog: null,
};

// --- routing ------------------------------------------------------------------------------------

function route() {
  const r = window.__route(); // defined in index.html, which also sends the first view's request
  return { ...r, sort: r.sort || COLUMNS[0] };
}

function hashFor(changes) {
  const current = route();
  const next = { ...current, ...changes };
  const params = new URLSearchParams();
  if (next.level) params.set("level", next.level);
  if (next.unit) params.set("unit", next.unit);
  params.set("window", next.window);
  params.set("period", next.period);
  if (next.sort !== COLUMNS[0]) params.set("sort", next.sort);
  if (next.asc) params.set("asc", "1");
  if (next.flag) params.set("flag", next.flag);
  return `#${params}`;
}

function linkTo(level, unit, extra = {}) {
  return hashFor({ level, unit, flag: null, ...extra });
}

// --- loading ------------------------------------------------------------------------------------

async function loadView() {
  if (state.loading) {
    state.dirty = true;
    return state.loading;
  }
  const r = route();
  document.body.classList.add("loading");
  state.loading = fetchView(r).then((view) => {
    $("view-error").hidden = true;
    performance.mark("view-received");
    render(view, r);
    performance.mark("view-drawn");
  }).catch((error) => {
    if (error instanceof ApiError && error.status === 401) return signOut("Your token was refused; sign in again.");
    clearView();
    $("view-error").textContent = error.message;
    $("view-error").hidden = false;
  }).finally(() => {
    state.loading = null;
    document.body.classList.remove("loading");
    if (state.dirty) {
      state.dirty = false;
      loadView();
    }
  });
  return state.loading;
}

// The first view's request went out from index.html; later ones go from here.
function fetchView(r) {
  const query = window.__viewQuery(r);
  const early = window.__firstView;
  window.__firstView = null;
  if (early && early.query === query) return early.response.then(readJson);
  return getJson(`/api/v1/dashboard/view?${query}`);
}

// After a refused or failed view, nothing of the previous place stays on screen.
function clearView() {
  state.view = null;
  $("title").textContent = "Not available";
  for (const id of ["headline", "pace", "charts", "children", "windows", "crumbs"]) replace($(id));
  $("children-section").hidden = true;
  $("windows-section").hidden = true;
  $("restricted-note").hidden = true;
}

async function optional(path, params, box, missing) {
  try {
    return await getJson(path, params);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) replace(box, h("p", { class: "muted" }, missing));
    else if (error instanceof ApiError && error.status === 403) replace(box, h("p", { class: "muted" }, "Not available to your role."));
    else replace(box, h("p", { class: "error" }, error.message));
    return null;
  }
}

async function loadFeeds() {
  const timeZone = state.view?.timezone || "UTC";
  const [trends, alerts] = await Promise.all([
    optional("/api/v1/trends", { status: "open", limit: 100 }, $("flags"), "Trend flags are not available yet."),
    optional("/api/v1/alerts", { limit: 200 }, $("alerts"), "Alerts are not available yet."),
  ]);
  if (trends) {
    state.flags = trends.flags || [];
    replace($("flags"), flagFeed(state.flags, { linkTo, timeZone }));
    highlightFlag();
    if (state.view) renderChildren(state.view, route());
  }
  if (alerts) replace($("alerts"), alertFeed(alerts.alerts || [], { linkTo, timeZone, onAck: acknowledge }));
}

async function acknowledge(alertIds) {
  try {
    for (const id of alertIds) await postJson(`/api/v1/alerts/${encodeURIComponent(id)}/ack`);
  } catch (error) {
    replace($("alerts"), h("p", { class: "error" }, `Could not acknowledge: ${error.message}`));
    return;
  }
  await loadFeeds();
}

async function loadModels() {
  if (state.principal && state.principal.role === "regional") {
    $("models-section").hidden = true;
    return;
  }
  const box = $("models");
  const listing = await optional("/api/v1/models", {}, box, "Model endpoints are not available yet.");
  if (!listing) return;
  const metrics = await optional("/api/v1/models/metrics", {}, box, "Model metrics are not available yet.");
  replace(box, modelPanel(listing, metrics));
}

// --- drawing ------------------------------------------------------------------------------------

function headline(view) {
  const figures = view.total ? view.total.figures : null;
  if (!figures) return [];
  return HEADLINE.map((key) => {
    const spec = METRICS[key];
    const value = figures[key];
    let main;
    let detail;
    if (spec.kind === "rate") {
      const n = figures[spec.denominator] || 0;
      main = n ? percent(value) : "–";
      detail = n ? `of ${count(n)} ${spec.unit}` : `no ${spec.unit}`;
      return h("div", { class: `kpi${n && n < SMALL_N ? " small-n" : ""}`, dataset: { metric: key, value: value ?? "", denominator: n },
        title: rateSentence(value, figures[spec.numerator], n, spec.unit) },
        h("div", { class: "kpi-label" }, spec.label), h("div", { class: "kpi-value" }, main), h("div", { class: "kpi-detail" }, detail));
    }
    main = count(value);
    detail = periodText(view);
    return h("div", { class: "kpi", dataset: { metric: key, value: value ?? "" } },
      h("div", { class: "kpi-label" }, spec.label), h("div", { class: "kpi-value" }, main), h("div", { class: "kpi-detail" }, detail));
  });
}

function periodText(view) {
  const name = view.period.name;
  if (name === "today") return `today (${view.timezone})`;
  if (name === "7d") return "last 7 days";
  return "campaign to date";
}

function paceBox(view) {
  const goals = view.goals;
  const pace = view.total?.pace;
  if (!goals.configured) {
    return h("p", { class: "muted small" }, "No ID goals configured (add a goal_ids column to the geography CSV).");
  }
  if (!pace) return h("p", { class: "muted small" }, view.restricted ? "" : "No goal for this place.");
  const ratio = pace.on_pace;
  const status = ratio === null ? "" : ratio >= 1 ? "on pace" : `${percent(ratio)} of the pace needed`;
  return h("div", { class: `pace-line${pace.ids < pace.expected_by_now ? " behind" : ""}`, dataset: { metric: "pace" } },
    h("strong", {}, `${count(pace.ids)} of ${count(pace.goal)} IDs`), ` (${percent(pace.share_of_goal)} of goal, campaign to date)`,
    ` · expected by now ${count(pace.expected_by_now)}`,
    pace.needed_per_day === null ? " · election day reached"
      : ` · needs ${perDay(pace.needed_per_day)} a day for ${count(pace.days_left)} days to ${goals.deadline}`,
    ` · last ${goals.recent_days} days ${perDay(pace.recent_per_day)} a day`, status ? ` (${status})` : "");
}

function renderChildren(view, r) {
  if (!view.child_level) {
    $("children-section").hidden = true;
    return;
  }
  $("children-section").hidden = false;
  const plural = { region: "Regions", county: "Counties", precinct: "Precincts" }[view.child_level];
  $("children-title").textContent = `${plural}, ${periodText(view)}`;
  const flaggedUnits = new Set(state.flags.filter((f) => f.level === view.child_level).map((f) => f.unit_id));
  replace($("children"), childrenTable({
    children: view.children, childLevel: view.child_level, sort: r.sort, descending: !r.asc,
    onSort: (key) => { location.hash = hashFor({ sort: key, asc: key === r.sort ? !r.asc : key === "name" }); },
    linkTo: (child) => linkTo(child.level, child.unit), flaggedUnits, showPace: view.goals.configured,
  }));
}

const WINDOW_ROWS = 24;

function renderWindows(view) {
  // A precinct has no children: its windows with activity, newest first, are the table.
  if (view.child_level || !view.series) {
    $("windows-section").hidden = true;
    return;
  }
  $("windows-section").hidden = false;
  $("windows-title").textContent = `Windows of one ${windowLabel(view.window)} with activity, newest first`;
  const format = dateTimeFormat(view.timezone, { weekday: "short", day: "numeric", month: "short",
    ...(view.window === "1d" ? {} : { hour: "2-digit", minute: "2-digit", hour12: false }) });
  const rows = [...view.series].reverse();
  const shown = state.allWindows ? rows : rows.slice(0, WINDOW_ROWS);
  replace($("windows"), h("table", { class: "children windows" },
    h("thead", {}, h("tr", {}, h("th", {}, "Window start"), COLUMNS.map((k) => h("th", { class: "num" }, METRICS[k].label)))),
    h("tbody", {}, shown.map((row) => h("tr", { dataset: { window: row.window_start } },
      h("th", { scope: "row" }, format.format(new Date(row.window_start))), COLUMNS.map((k) => figureCell(k, row)))))),
    rows.length > shown.length
      ? h("button", { type: "button", class: "link more", onclick: () => { state.allWindows = true; renderWindows(view); } },
          `Show all ${rows.length} windows`)
      : null);
}

function renderCharts(view) {
  if (!view.series) {
    replace($("charts"));
    return;
  }
  replace($("charts"), CHARTS.map((metric) => h("figure", { class: "panel" },
    h("figcaption", {}, METRICS[metric].label, h("span", { class: "muted small" }, ` per ${windowLabel(view.window)}`)),
    timeChart({ metric, rows: view.series, window: view.window, span: view.series_span, timeZone: view.timezone }))));
}

function render(view, r) {
  const previous = state.view;
  state.view = view;
  if (!previous || previous.place.unit !== view.place.unit || previous.place.level !== view.place.level) {
    state.allWindows = false;
    window.scrollTo(0, 0);
  }
  replace($("crumbs"), view.crumbs.flatMap((c, i) => [
    i ? h("span", { class: "sep" }, "›") : null,
    view.restricted && c.level === "state" ? h("span", {}, "Your regions")
      : i === view.crumbs.length - 1 ? h("span", { "aria-current": "page" }, c.name)
        : h("a", { href: linkTo(c.level, c.unit) }, c.name),
  ]));
  const levelName = view.place.level === "state" ? (view.restricted ? "Your regions in" : "State") : view.place.level;
  $("title").textContent = `${levelName[0].toUpperCase()}${levelName.slice(1)} ${view.place.name}`;
  $("restricted-note").hidden = !view.restricted;
  for (const button of document.querySelectorAll("[data-window]")) button.setAttribute("aria-pressed", String(button.dataset.window === r.window));
  for (const button of document.querySelectorAll("[data-period]")) button.setAttribute("aria-pressed", String(button.dataset.period === r.period));

  replace($("headline"), headline(view));
  replace($("pace"), paceBox(view));
  renderCharts(view);
  renderChildren(view, r);
  renderWindows(view);
  flashChanges(previous, view);
  highlightFlag();
  if (window.__dashboardReady === undefined) {
    // Navigation start → the first view's table and charts are in the document (bench/dashboard.py reads it).
    requestAnimationFrame(() => { window.__dashboardReady = performance.now(); });
  }
}

function flashChanges(previous, view) {
  if (!previous || previous.place.unit !== view.place.unit || previous.period.name !== view.period.name) return;
  for (const cell of document.querySelectorAll("#headline [data-metric], #children td[data-metric]")) {
    const row = cell.closest("tr");
    const unit = row ? row.dataset.unit : null;
    const before = unit ? previous.children.find((c) => c.unit === unit)?.figures : previous.total?.figures;
    if (before && String(before[cell.dataset.metric] ?? "") !== cell.dataset.value) cell.classList.add("changed");
  }
}

function highlightFlag() {
  const flag = route().flag;
  for (const item of document.querySelectorAll("#flags [data-flag]")) item.classList.toggle("current", item.dataset.flag === flag);
}

// --- live ---------------------------------------------------------------------------------------

function relevant(changed) {
  const view = state.view;
  if (!view || !changed.length) return false;
  if (view.place.level === "state") return true; // the server only names regions this principal may see
  return changed.includes(view.place.region);
}

function onEvent(event, data) {
  if (event === "hello") {
    state.principal = data;
    const regions = data.regions ? ` · ${data.regions.join(", ")}` : "";
    $("who").textContent = `${data.name} (${data.role}${regions})`;
    if (data.role === "regional") $("models-section").hidden = true;
    return;
  }
  if (event !== "tick") return;
  state.lastTick = Date.now();
  const box = $("freshness");
  box.classList.remove("lost");
  if (data.as_of) {
    const timeZone = state.view?.timezone || "UTC";
    const accepted = data.events_accepted !== undefined ? ` · ${count(data.events_accepted)} events accepted by this worker` : "";
    box.textContent = `as of ${clockTime(data.as_of, timeZone)}, ${behind(data.behind_s)}${accepted}`;
    box.dataset.asOf = data.as_of;
  } else {
    box.textContent = "no data yet";
  }
  // The first tick of a (re)opened stream is its baseline: data that arrived after the view was
  // computed, and before the stream opened, shows in `as_of` rather than in `changed`.
  const missed = state.streamOpened && state.view && data.as_of && Date.parse(data.as_of) > Date.parse(state.view.generated_at);
  state.streamOpened = false;
  if (missed || relevant(data.changed)) loadView();
  if (data.flags_changed) loadFeeds();
}

function onStreamState(status) {
  const box = $("freshness");
  if (status === "open") {
    state.streamOpened = true;
  } else if (status === "lost") {
    box.classList.add("lost");
    box.textContent = "live updates lost: reconnecting…";
  } else if (status === "refused") {
    signOut("Your token was refused; sign in again.");
  }
}

// --- sign in and out ------------------------------------------------------------------------------

function signOut(message = "") {
  if (state.stopStream) state.stopStream();
  state.stopStream = null;
  setToken(null);
  $("main").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("freshness").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message;
}

function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  $("freshness").textContent = "connecting…";
  // The view first; the live stream, the feeds and the model panel once it is drawn, so that they do
  // not compete with it for the worker.
  loadView().then(() => {
    state.stopStream = openStream(onEvent, onStreamState);
    loadFeeds();
    loadModels();
  });
  state.watchdog ??= setInterval(() => {
    if (state.stopStream && state.lastTick && Date.now() - state.lastTick > 5000) {
      $("freshness").classList.add("lost");
    }
  }, 1000);
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setToken($("token-input").value.trim());
  $("token-input").value = "";
  start();
});
$("logout").addEventListener("click", () => signOut());
for (const button of document.querySelectorAll("[data-window]")) {
  button.addEventListener("click", () => { location.hash = hashFor({ window: button.dataset.window }); });
}
for (const button of document.querySelectorAll("[data-period]")) {
  button.addEventListener("click", () => { location.hash = hashFor({ period: button.dataset.period }); });
}
window.addEventListener("hashchange", () => loadView());

if (token()) start();
else signOut();
