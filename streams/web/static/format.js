// How numbers, rates and times read on the page.

// Rates on fewer than this many trials are shown, but de-emphasised: at n = 30 a proportion's
// standard error can still be 9 points (sqrt(0.25 / 30)).
export const SMALL_N = 30;

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

export function count(value) {
  return value === null || value === undefined ? "–" : integer.format(value);
}

export function oneDecimal(value) {
  return value === null || value === undefined || !Number.isFinite(value) ? "–" : decimal.format(value);
}

// A rate per day: one decimal while it is small, whole numbers once it is not.
export function perDay(value) {
  return value !== null && value !== undefined && Math.abs(value) >= 100 ? count(value) : oneDecimal(value);
}

export function percent(value) {
  return value === null || value === undefined || !Number.isFinite(value) ? "–" : `${decimal.format(100 * value)}%`;
}

// Wilson score interval for a binomial proportion (Wilson 1927, JASA 22:209-212); z = 1.96 for 95%.
export function wilson(successes, trials, z = 1.96) {
  if (!trials) return null;
  const p = successes / trials;
  const z2 = z * z;
  const centre = (p + z2 / (2 * trials)) / (1 + z2 / trials);
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / (1 + z2 / trials);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

// "54.2% of 1,204 IDs (95% CI 51.4–57.0%)"
export function rateSentence(rate, numerator, denominator, unit) {
  if (!denominator) return `no ${unit} yet`;
  const interval = wilson(numerator, denominator);
  const ci = interval ? ` (95% CI ${oneDecimal(100 * interval[0])}–${oneDecimal(100 * interval[1])}%)` : "";
  return `${percent(rate)} of ${count(denominator)} ${unit}${ci}`;
}

// Building an Intl.DateTimeFormat costs far more than using one: charts format hundreds of times.
const formats = new Map();

export function dateTimeFormat(timeZone, options) {
  const key = `${timeZone}|${JSON.stringify(options)}`;
  let format = formats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", { timeZone, ...options });
    formats.set(key, format);
  }
  return format;
}

export function clockTime(iso, timeZone) {
  return dateTimeFormat(timeZone, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }).format(
    new Date(iso),
  );
}

export function behind(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${decimal.format(seconds)} s behind`;
  if (seconds < 3600) return `${integer.format(Math.floor(seconds / 60))} min behind`;
  if (seconds < 172800) return `${decimal.format(seconds / 3600)} h behind`;
  return `${integer.format(Math.floor(seconds / 86400))} days behind`;
}

export function windowLabel(window) {
  return { "15m": "15 minutes", "1h": "hour", "1d": "day" }[window] || window;
}
