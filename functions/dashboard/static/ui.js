/* The console's building blocks: badges, cards, tables, stats, notices, forms, secrets shown once. */

import { ApiError } from "./api.js";
import { STATUS_TONES } from "./constants.js";
import { $, clear, h } from "./dom.js";

export function badge(text, kind) { return h("span", { class: `badge${kind ? " badge-" + kind : ""}`, text }); }
// A status's colour (ok, warn, bad or none), from the backend's table of every status it answers.
export function statusKind(status) { return STATUS_TONES[String(status)] || ""; }
export function httpBadge(code) {
  if (code === null || code === undefined) return badge("no answer", "bad");
  return badge(String(code), code < 300 ? "ok" : code < 500 && code !== 429 ? "warn" : "bad");
}
export function modeBadge(mode) { return badge(mode, mode === "live" ? "live" : "test"); }

export function card(title, body, actions) {
  return h("section", { class: "card" },
    title || actions ? h("div", { class: "card-head" }, title ? h("h2", { text: title }) : null, actions ? h("div", { class: "row" }, actions) : null) : null,
    body);
}

export function table(columns, rows, opts) {
  opts = opts || {};
  if (!rows.length) return h("div", { class: "empty", text: opts.empty || "Nothing here yet." });
  const cls = (c) => [c.num ? "num" : "", c.nowrap ? "nowrap" : ""].join(" ").trim() || null;
  const thead = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: cls(c), text: c.label }))));
  const tbody = h("tbody", {}, rows.map((row) => {
    const tr = h("tr", { class: opts.onRow ? "clickable" : null },
      columns.map((c) => h("td", { class: cls(c) }, c.render(row))));
    if (opts.onRow) tr.addEventListener("click", (ev) => { if (!ev.target.closest("button, a, input, select")) opts.onRow(row, tr); });
    if (opts.rowData) Object.assign(tr.dataset, opts.rowData(row));
    return tr;
  }));
  return h("div", { class: "table-wrap" }, h("table", { class: opts.class || null }, thead, tbody));
}

export function stat(label, value, sub, key) {
  return h("div", { class: "stat", dataset: key ? { stat: key } : null },
    h("div", { class: "stat-label", text: label }), h("div", { class: "stat-value", text: value }),
    sub ? h("div", { class: "stat-sub", text: sub }) : null);
}

export function notice(kind, text) { return h("p", { class: `notice notice-${kind}`, text }); }

export function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4500);
}

export function secretBox(title, value, note, extra) {
  const code = h("code", { class: "secret-code", text: value });
  const copy = h("button", {
    type: "button", class: "btn btn-small", text: "Copy", onclick: async () => {
      try { await navigator.clipboard.writeText(value); copy.textContent = "Copied"; } catch (e) {
        const range = document.createRange(); range.selectNodeContents(code);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range); copy.textContent = "Selected";
      }
    },
  });
  return h("div", { class: "secret", dataset: { secret: "shown-once" } },
    h("h3", { text: title }), h("div", { class: "secret-value" }, code, copy), extra || null,
    h("p", { class: "small muted", text: note || "Copy it now: it is shown once and never again." }));
}

// A destructive action asks twice: the first click arms it, the second acts.
export function armed(label, confirmLabel, action) {
  const btn = h("button", { type: "button", class: "btn btn-small btn-danger", text: label });
  let timer = null;
  btn.addEventListener("click", async () => {
    if (!btn.classList.contains("armed")) {
      btn.classList.add("armed"); btn.textContent = confirmLabel;
      timer = setTimeout(() => { btn.classList.remove("armed"); btn.textContent = label; }, 5000);
      return;
    }
    clearTimeout(timer);
    btn.disabled = true;
    try { await action(); } catch (e) { showError(e); btn.disabled = false; btn.classList.remove("armed"); btn.textContent = label; }
  });
  return btn;
}

export function field(label, input, cls) { return h("label", { class: `field${cls ? " " + cls : ""}` }, label, input); }
export function select(options, value, props) {
  const el = h("select", props || {});
  for (const opt of options) {
    const [v, text] = Array.isArray(opt) ? opt : [opt, opt];
    el.appendChild(h("option", { value: v, text, selected: v === value }));
  }
  return el;
}

export function ids(obj) {
  return h("div", { class: "ids" }, Object.entries(obj || {}).filter(([, v]) => v).map(([k, v]) =>
    h("span", { class: "small" }, h("span", { class: "muted", text: k.replace(/_/g, " ") + " " }), h("code", { text: v }))));
}

export function showError(e, where) {
  const text = e instanceof ApiError ? `${e.message}${e.code ? ` (${e.code})` : ""}` : String(e && e.message || e);
  if (where) { clear(where); where.appendChild(notice("bad", text)); where.hidden = false; } else toast(text);
}

export function pageHead(title, sub, actions) {
  return h("div", { class: "page-head" }, h("div", {}, h("h1", { text: title }), sub ? h("p", { text: sub }) : null),
    actions ? h("div", { class: "row" }, actions) : null);
}
