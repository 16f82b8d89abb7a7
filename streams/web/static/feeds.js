// Trend flags and alerts, each linking to its geography's view; and the model panel.

import { h, s } from "./dom.js";
import { count, dateTimeFormat, oneDecimal, percent } from "./format.js";

const LABELS = {
  support_rate: "Support rate", support_residual: "Support vs model", contact_rate: "Contact rate",
  email_click_rate: "Email click rate", email_unsubscribe_rate: "Unsubscribe rate",
};

function metricLabel(metric) {
  if (LABELS[metric]) return LABELS[metric];
  if (metric.startsWith("signups:")) return `Signups (${metric.slice(8)})`;
  return metric.replaceAll("_", " ");
}

function placeText(level, unit) {
  if (level === "county") return unit.split("/").pop();
  return level === "region" ? `${unit} region` : `${level} ${unit}`;
}

function effectText(flag) {
  if (flag.effect_kind === "difference") {
    const points = 100 * flag.effect;
    return `${points >= 0 ? "+" : "−"}${oneDecimal(Math.abs(points))} pts (${percent(flag.observed)} vs ${percent(flag.baseline)} baseline, ${count(flag.volume)} trials)`;
  }
  return `${flag.effect >= 0 ? "+" : "−"}${oneDecimal(Math.abs(100 * flag.effect))}% (${count(flag.observed)} vs ${oneDecimal(flag.baseline)} expected)`;
}

export function flagFeed(flags, { linkTo, timeZone }) {
  if (!flags.length) return h("p", { class: "muted" }, "No open trend flags.");
  const when = dateTimeFormat(timeZone, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    hour12: false });
  return h("ul", { class: "feed" }, flags.map((flag) =>
    h("li", { class: `flag ${flag.direction}`, dataset: { flag: flag.flag_id, region: flag.region } },
      h("a", { href: linkTo(flag.level, flag.unit_id, { flag: flag.flag_id }), class: "place-link" },
        `${metricLabel(flag.metric)} ${flag.direction} in ${placeText(flag.level, flag.unit_id)}`),
      h("div", { class: "detail" }, effectText(flag), ` · z = ${oneDecimal(flag.z_score)}`),
      h("div", { class: "muted" }, `${flag.status} · raised ${when.format(new Date(flag.raised_at))}`))));
}

// `onAck(alertIds)`: acknowledge the line's unacknowledged deliveries (the server checks the region).
export function alertFeed(alerts, { linkTo, timeZone, onAck = null }) {
  if (!alerts.length) return h("p", { class: "muted" }, "No alerts.");
  // One line per flag event: an alert goes to several people on several channels.
  const seen = new Map();
  for (const alert of alerts) {
    const key = `${alert.flag_id}|${alert.event}`;
    if (!seen.has(key)) seen.set(key, { alert, deliveries: [] });
    seen.get(key).deliveries.push(alert);
  }
  const when = dateTimeFormat(timeZone, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    hour12: false });
  return h("ul", { class: "feed" }, [...seen.values()].slice(0, 50).map(({ alert, deliveries }) => {
    const title = alert.content?.title || `${metricLabel(alert.metric)} in ${placeText(alert.level, alert.unit_id)}`;
    const geographic = ["precinct", "county", "region"].includes(alert.level);
    const sent = deliveries.filter((d) => d.status === "sent").length;
    const open = deliveries.filter((d) => !d.acked_by).map((d) => d.alert_id);
    const acked = deliveries.find((d) => d.acked_by);
    const ack = open.length && onAck
      ? h("button", { type: "button", class: "ack", dataset: { ack: open.join(" ") },
        onclick: (event) => { event.currentTarget.disabled = true; onAck(open); } }, "Acknowledge")
      : null;
    return h("li", { class: `alert ${alert.severity}`, dataset: { alert: alert.alert_id, region: alert.region,
      acked: open.length ? "false" : "true" } },
      geographic ? h("a", { href: linkTo(alert.level, alert.unit_id, { flag: alert.flag_id }), class: "place-link" }, title)
        : h("a", { href: linkTo("region", alert.region, { flag: alert.flag_id }), class: "place-link" }, title),
      h("div", { class: "muted" },
        `${alert.severity} · ${alert.event} · ${sent}/${deliveries.length} delivered · ${when.format(new Date(alert.created_at))}`,
        acked ? ` · acknowledged by ${acked.acked_by}` : ""),
      ack);
  }));
}

// Calibration: mean predicted score against the observed support rate per bin, with the diagonal.
function calibrationPlot(series) {
  const size = 220;
  const m = 34;
  const scale = (v) => m + v * (size - 2 * m);
  const svg = s("svg", { viewBox: `0 0 ${size} ${size}`, class: "chart calibration", role: "img",
    "aria-label": "calibration: observed support rate against predicted score" });
  svg.append(
    s("line", { x1: scale(0), y1: size - scale(0), x2: scale(1), y2: size - scale(1), class: "diagonal" }),
    s("line", { x1: scale(0), y1: size - scale(0), x2: scale(1), y2: size - scale(0), class: "axis" }),
    s("line", { x1: scale(0), y1: size - scale(0), x2: scale(0), y2: size - scale(1), class: "axis" }),
    s("text", { x: size / 2, y: size - 4, class: "axis-title", "text-anchor": "middle" }, "predicted support"),
    s("text", { x: 10, y: size / 2, class: "axis-title", "text-anchor": "middle",
      transform: `rotate(-90 10 ${size / 2})` }, "observed support"),
  );
  for (const v of [0, 0.5, 1]) {
    svg.append(s("text", { x: scale(v), y: size - m + 14, class: "tick", "text-anchor": "middle" }, `${v * 100}%`));
    svg.append(s("text", { x: m - 4, y: size - scale(v) + 4, class: "tick", "text-anchor": "end" }, `${v * 100}%`));
  }
  series.forEach(({ name, bins }, i) => {
    const cls = `calibration-series s${i}`;
    const pts = bins.filter((b) => b.n > 0).map((b) => [scale(b.predicted), size - scale(b.observed), b]);
    svg.append(s("polyline", { points: pts.map(([px, py]) => `${px},${py}`).join(" "), class: cls }));
    for (const [px, py, b] of pts) {
      svg.append(s("circle", { cx: px, cy: py, r: 3, class: cls },
        s("title", {}, `${name}: predicted ${percent(b.predicted)}, observed ${percent(b.observed)} of ${count(b.n)} IDs`)));
    }
  });
  return svg;
}

// Accepts bins as {predicted|mean_score, observed|observed_rate, n|count}.
function normaliseBins(bins) {
  return (bins || []).map((b) => ({
    predicted: b.predicted ?? b.mean_score ?? b.score, observed: b.observed ?? b.observed_rate ?? b.rate,
    n: b.n ?? b.count ?? b.labels ?? 0,
  }));
}

export function modelPanel(listing, metrics) {
  const aliases = listing?.aliases || {};
  const rows = (metrics?.metrics || []).filter((r) => (r.scope || "all") === "all");
  const byAlias = ["champion", "challenger", "shadow"].filter((a) => aliases[a] || rows.some((r) => r.alias === a));
  const figure = (r, key, digits = 3) => (r && r[key] !== null && r[key] !== undefined ? Number(r[key]).toFixed(digits) : "–");
  const table = h("table", { class: "models" },
    h("thead", {}, h("tr", {}, ["Alias", "Version", "Labels (window)", "AUC", "Log loss", "Brier", "ECE"].map((t) =>
      h("th", { class: t === "Alias" || t === "Version" ? "" : "num" }, t)))),
    h("tbody", {}, byAlias.map((alias) => {
      const version = aliases[alias] || rows.find((r) => r.alias === alias)?.version || "";
      const r = rows.find((x) => x.alias === alias && x.version === version) || rows.find((x) => x.alias === alias);
      return h("tr", { dataset: { alias } },
        h("th", { scope: "row" }, alias), h("td", { class: "mono" }, version.slice(0, 12)),
        h("td", { class: "num" }, r ? `${count(r.labels)} (${count(r.window_labels)})` : "–"),
        h("td", { class: "num" }, figure(r, "auc")), h("td", { class: "num" }, figure(r, "log_loss")),
        h("td", { class: "num" }, figure(r, "brier")), h("td", { class: "num" }, figure(r, "ece")));
    })));
  const calibration = (metrics?.calibration || [])
    .filter((c) => !c.scope || c.scope === "all")
    .map((c) => ({ name: c.alias || (c.version || "").slice(0, 12), bins: normaliseBins(c.bins) }));
  return [
    h("div", {},
      byAlias.length ? table : h("p", { class: "muted" }, "No model metrics yet."),
      h("p", { class: "note" }, "Over the latest window of labels (canvass IDs), each scored before the model learned from it " +
        "(prequential). Higher AUC is better; lower log loss, Brier and ECE are better.")),
    calibration.length
      ? h("figure", {}, calibrationPlot(calibration),
          h("figcaption", {}, calibration.map((c, i) => h("span", { class: `legend s${i}` }, c.name))))
      : h("p", { class: "muted" }, "Calibration plot: the model endpoint gives no calibration bins yet."),
  ];
}
