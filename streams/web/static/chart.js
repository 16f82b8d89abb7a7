// Time-series charts drawn as SVG: bars for counts, points with a 95% band for rates. Axes carry
// units; every mark has a tooltip in words and data-* attributes with the exact figures.

import { s } from "./dom.js";
import { SMALL_N, count, dateTimeFormat, oneDecimal, rateSentence, wilson } from "./format.js";
import { METRICS } from "./metrics.js";

const WIDTH = 380;
const HEIGHT = 190;
const MARGIN = { right: 12, top: 12, bottom: 34 };
const TICK_CHAR_PX = 6; // width of a tick label's character at 10 px
const WINDOW_MS = { "15m": 15 * 60e3, "1h": 3600e3, "1d": 86400e3 };
const PER = { "15m": "per 15 min", "1h": "per hour", "1d": "per day" };
// Tick spacing (hours of local time) for each window's span.
const TICK_HOURS = { "15m": 3, "1h": 24, "1d": 24 * 14 };

function niceStep(max, ticks) {
  const raw = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  const nice = residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1;
  return nice * magnitude;
}

export function niceTicks(max, ticks = 4) {
  if (!(max > 0)) return [0, 1];
  const step = niceStep(max, ticks);
  const values = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) values.push(v);
  if (values[values.length - 1] < max) values.push(values[values.length - 1] + step);
  return values;
}

function localHourMinute(date, timeZone) {
  const parts = dateTimeFormat(timeZone, { hour: "numeric", minute: "numeric", hour12: false }).formatToParts(date);
  const get = (type) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return [get("hour") % 24, get("minute")];
}

// Tick times: local-clock boundaries every TICK_HOURS[window] hours inside [start, end].
function timeTicks(start, end, window, timeZone) {
  const stepMs = TICK_HOURS[window] * 3600e3;
  let first = null;
  for (let t = start; t <= Math.min(end, start + Math.min(stepMs, 86400e3) + 3600e3); t += 15 * 60e3) {
    const [hour, minute] = localHourMinute(new Date(t), timeZone);
    if (minute === 0 && hour % Math.min(TICK_HOURS[window], 24) === 0) {
      first = t;
      break;
    }
  }
  if (first === null) first = start;
  const ticks = [];
  for (let t = first; t <= end; t += stepMs) ticks.push(t);
  return ticks;
}

function tickLabel(t, window, timeZone) {
  if (window === "15m") return dateTimeFormat(timeZone, { hour: "2-digit", minute: "2-digit", hour12: false }).format(t);
  if (window === "1h") return dateTimeFormat(timeZone, { weekday: "short", day: "numeric" }).format(t);
  return dateTimeFormat(timeZone, { day: "numeric", month: "short" }).format(t);
}

function windowText(startMs, window, timeZone) {
  const options =
    window === "1d"
      ? { weekday: "short", day: "numeric", month: "short" }
      : { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false };
  return `${dateTimeFormat(timeZone, options).format(startMs)} (${window})`;
}

function valueText(metric, row) {
  const spec = METRICS[metric];
  if (spec.kind === "rate") {
    return `${spec.noun} ${rateSentence(row[metric], row[spec.numerator], row[spec.denominator], spec.unit)}`;
  }
  return `${count(row[metric])} ${spec.unit}`;
}

function yTitle(metric, window) {
  const spec = METRICS[metric];
  if (spec.kind === "rate") return `% of ${spec.unit}`;
  return `${spec.unit} ${PER[window]}`;
}

export function timeChart({ metric, rows, window, span, timeZone }) {
  const spec = METRICS[metric];
  const start = Date.parse(span.from);
  const end = Date.parse(span.to);
  const width = WINDOW_MS[window];
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;

  const isRate = spec.kind === "rate";
  const points = rows.map((row) => {
    const t = Date.parse(row.window_start);
    const trials = isRate ? row[spec.denominator] || 0 : null;
    const band = isRate && trials ? wilson(row[spec.numerator], trials) : null;
    return { row, t, value: row[metric], trials, band };
  });
  const top = isRate
    ? Math.max(0.1, ...points.filter((p) => p.band && p.trials >= SMALL_N).map((p) => p.band[1]),
        ...points.filter((p) => p.value !== null).map((p) => p.value))
    : Math.max(1, ...points.map((p) => p.value || 0));
  const ticks = niceTicks(isRate ? Math.min(top, 1) : top);
  const yMax = ticks[ticks.length - 1];
  const y = (v) => MARGIN.top + plotH - (Math.min(v, yMax) / yMax) * plotH;
  const tickText = (v) => (isRate ? `${oneDecimal(100 * v).replace(/\.0$/, "")}%` : count(v));
  // Room on the left for the longest tick label and the axis title beside it.
  const left = 26 + TICK_CHAR_PX * Math.max(...ticks.map((v) => tickText(v).length));
  const plotW = WIDTH - left - MARGIN.right;
  const x = (t) => left + ((t - start) / (end - start)) * plotW;

  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img",
    "aria-label": `${spec.label}, ${yTitle(metric, window)}`, dataset: { metric },
  });
  // Axes: y gridlines with labels, x ticks with local times.
  for (const v of ticks) {
    svg.append(
      s("line", { x1: left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, tickText(v)),
    );
  }
  for (const t of timeTicks(start, end, window, timeZone)) {
    svg.append(
      s("line", { x1: x(t), x2: x(t), y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4, class: "axis" }),
      s("text", { x: x(t), y: HEIGHT - MARGIN.bottom + 16, class: "tick", "text-anchor": "middle" },
        tickLabel(t, window, timeZone)),
    );
  }
  svg.append(
    s("line", { x1: left, x2: WIDTH - MARGIN.right, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH,
      class: "axis" }),
    s("text", { x: 12, y: MARGIN.top + plotH / 2, class: "axis-title", "text-anchor": "middle",
      transform: `rotate(-90 12 ${MARGIN.top + plotH / 2})` }, yTitle(metric, window)),
    s("text", { x: left + plotW / 2, y: HEIGHT - 4, class: "axis-title", "text-anchor": "middle" },
      `window start (${timeZone})`),
  );

  const barW = Math.max(1, (width / (end - start)) * plotW - 1);
  if (isRate) {
    // 95% band over consecutive windows, broken where a window has no trials.
    let run = [];
    const flush = () => {
      if (run.length) {
        const upper = run.map((p) => `${x(p.t + width / 2)},${y(p.band[1])}`);
        const lower = run.map((p) => `${x(p.t + width / 2)},${y(p.band[0])}`).reverse();
        svg.append(s("polygon", { points: [...upper, ...lower].join(" "), class: "band" }));
      }
      run = [];
    };
    for (const p of points) (p.band ? run.push(p) : flush());
    flush();
  }
  for (const p of points) {
    const title = s("title", {}, `${windowText(p.t, window, timeZone)}: ${valueText(metric, p.row)}`);
    const data = { windowStart: p.row.window_start, value: p.value ?? "", denominator: p.trials ?? "" };
    if (isRate) {
      if (p.value === null || p.value === undefined) continue;
      const small = p.trials < SMALL_N;
      svg.append(s("circle", { cx: x(p.t + width / 2), cy: y(p.value), r: small ? 2.5 : 3,
        class: small ? "point small-n" : "point", dataset: data }, title));
    } else {
      const v = p.value || 0;
      svg.append(s("rect", { x: x(p.t), y: y(v), width: barW, height: Math.max(0, y(0) - y(v)), class: "bar",
        dataset: data }, title));
    }
  }
  return svg;
}
