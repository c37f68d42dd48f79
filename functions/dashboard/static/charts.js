/* The Overview page's charts, drawn as inline SVG (no library): requests, rates and latency over time, status codes. */

import { h, s } from "./dom.js";
import { fmtNum } from "./format.js";

const W = 640, H = 220, PAD = { l: 56, r: 12, t: 12, b: 28 };

// The axis top: four gridline steps of 1, 2, 3 or 5 times a power of ten, so every label is a round number.
function niceMax(v) {
  const step = Math.max(v, 4) / 4;
  const p = Math.pow(10, Math.floor(Math.log10(step)));
  for (const m of [1, 2, 3, 5, 10]) if (m * p >= step) return 4 * m * p;
  return 40 * p;
}

function bucketLabel(iso, seconds) {
  const d = new Date(iso);
  if (seconds >= 86400) return d.toLocaleDateString("en-US", { month: "short", day: "numeric" });
  return d.toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit" });
}

function axes(svg, max, fmt, labels) {
  const innerH = H - PAD.t - PAD.b;
  for (let i = 0; i <= 4; i++) {
    const y = PAD.t + innerH - (innerH * i) / 4;
    svg.appendChild(s("line", { class: "grid-line", x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }));
    svg.appendChild(s("text", { x: PAD.l - 6, y: y + 4, "text-anchor": "end" }, fmt((max * i) / 4)));
  }
  svg.appendChild(s("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b }));
  const step = Math.max(1, Math.ceil(labels.length / 8));
  const innerW = W - PAD.l - PAD.r;
  labels.forEach((label, i) => {
    if (i % step) return;
    const x = PAD.l + (innerW * (i + 0.5)) / labels.length;
    svg.appendChild(s("text", { x, y: H - 8, "text-anchor": "middle" }, label));
  });
}

export function barChart(key, buckets, seconds) {
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Requests over time", "data-chart": key });
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.requests)));
  axes(svg, max, (v) => fmtNum(Math.round(v)), buckets.map((b) => bucketLabel(b.start, seconds)));
  const innerW = W - PAD.l - PAD.r, innerH = H - PAD.t - PAD.b;
  const slot = innerW / Math.max(1, buckets.length), bw = Math.max(2, slot * 0.7);
  buckets.forEach((b, i) => {
    if (!b.requests) return;
    const x = PAD.l + slot * i + (slot - bw) / 2;
    const okH = (innerH * (b.requests - b.errors)) / max, errH = (innerH * b.errors) / max;
    const tip = `${bucketLabel(b.start, seconds)}: ${b.requests} requests, ${b.errors} errors`;
    if (okH > 0) svg.appendChild(s("rect", { class: "bar bar-ok", x, y: PAD.t + innerH - okH, width: bw, height: okH, fill: "#14b8a6", rx: 2 }, s("title", {}, tip)));
    if (errH > 0) svg.appendChild(s("rect", { class: "bar bar-error", x, y: PAD.t + innerH - okH - errH, width: bw, height: errH, fill: "#ef4444", rx: 2 }, s("title", {}, tip)));
  });
  return svg;
}

export function lineChart(key, label, buckets, seconds, series, fixedMax, fmt) {
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, "data-chart": key });
  const values = series.flatMap((sr) => buckets.map((b) => b[sr.field]).filter((v) => v !== null && v !== undefined));
  const max = fixedMax || niceMax(Math.max(0, ...values));
  axes(svg, max, fmt, buckets.map((b) => bucketLabel(b.start, seconds)));
  const innerW = W - PAD.l - PAD.r, innerH = H - PAD.t - PAD.b;
  const slot = innerW / Math.max(1, buckets.length);
  for (const sr of series) {
    let d = "";
    const dots = [];
    buckets.forEach((b, i) => {
      const v = b[sr.field];
      if (v === null || v === undefined) return;
      const x = PAD.l + slot * (i + 0.5), y = PAD.t + innerH - (innerH * v) / max;
      d += `${d ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
      dots.push(s("circle", { class: "point", cx: x.toFixed(1), cy: y.toFixed(1), r: 3, fill: sr.color },
        s("title", {}, `${bucketLabel(b.start, seconds)}: ${sr.name} ${fmt(v)}`)));
    });
    if (d) svg.appendChild(s("path", { class: "line", d, fill: "none", stroke: sr.color, "stroke-width": 2, "stroke-linejoin": "round" }));
    dots.forEach((dot) => svg.appendChild(dot));
  }
  return svg;
}

export function statusChart(codes) {
  const rowH = 26, width = W, height = Math.max(60, codes.length * rowH + 10);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Status code distribution", "data-chart": "status" });
  const max = Math.max(1, ...codes.map((c) => c.count));
  const total = codes.reduce((a, c) => a + c.count, 0) || 1;
  const left = 60, right = 110, inner = width - left - right;
  codes.forEach((c, i) => {
    const y = 6 + i * rowH, w = Math.max(2, (inner * c.count) / max);
    const color = c.status < 300 ? "#14b8a6" : c.status < 400 ? "#64748b" : c.status === 429 ? "#f59e0b" : c.status < 500 ? "#f97316" : "#ef4444";
    svg.appendChild(s("text", { x: left - 10, y: y + 15, "text-anchor": "end" }, String(c.status)));
    svg.appendChild(s("rect", { class: "bar", x: left, y: y + 3, width: w, height: rowH - 10, fill: color, rx: 3 }, s("title", {}, `${c.status}: ${c.count}`)));
    svg.appendChild(s("text", { x: left + w + 8, y: y + 15 }, `${fmtNum(c.count)} · ${Math.round((100 * c.count) / total)}%`));
  });
  if (!codes.length) svg.appendChild(s("text", { x: width / 2, y: 34, "text-anchor": "middle" }, "No requests in this window"));
  return svg;
}

export function legend(items) { return h("div", { class: "legend" }, items.map(([cls, text]) => h("span", {}, h("i", { class: cls }), text))); }
