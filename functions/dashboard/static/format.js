/* Formatting for people: dates, counts, percentages, latencies and money (minor units, the API's exponents). */

import { MINOR_UNITS } from "./constants.js";

export function fmtDate(iso, withYear) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const opts = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
  if (withYear) opts.year = "numeric";
  return d.toLocaleString("en-US", opts);
}
export function fmtNum(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
export function fmtPct(n) { return n === null || n === undefined ? "—" : `${n}%`; }
export function fmtMs(n) { return n === null || n === undefined ? "—" : `${Math.round(n)} ms`; }
export function money(amount, currency) {
  const exp = MINOR_UNITS[currency] ?? 2;
  const major = amount / Math.pow(10, exp);
  return `${major.toLocaleString("en-US", { minimumFractionDigits: exp, maximumFractionDigits: exp })} ${currency}`;
}
export function short(text, n) { text = String(text || ""); return text.length > n ? text.slice(0, n) + "…" : text; }
