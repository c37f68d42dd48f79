import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { fmtDate, fmtMs, short } from "./format.js";
import { route } from "./router.js";
import { STORE } from "./state.js";
import { badge, card, field, httpBadge, pageHead, select, statusKind, table } from "./ui.js";

const INTERVALS = [["900", "Last 15 minutes"], ["3600", "Last hour"], ["86400", "Last 24 hours"], ["604800", "Last 7 days"], ["2592000", "Last 30 days"], ["custom", "Custom…"]];

export async function logs() {
  const f = JSON.parse(STORE.getItem("tahsil.logFilters") || "{}");
  const status = select([["", "All statuses"], ["2xx", "2xx success"], ["4xx", "4xx client errors"], ["5xx", "5xx server errors"], ["401", "401"], ["403", "403"], ["404", "404"], ["429", "429"]], f.status || "", { id: "logs-status" });
  const interval = select(INTERVALS, f.interval || "86400", { id: "logs-interval" });
  const from = h("input", { type: "datetime-local", id: "logs-from", value: f.from || "" });
  const to = h("input", { type: "datetime-local", id: "logs-to", value: f.to || "" });
  const custom = h("div", { class: "row", hidden: interval.value !== "custom" }, field("From", from), field("To", to));
  interval.addEventListener("change", () => { custom.hidden = interval.value !== "custom"; });
  const path = h("input", { id: "logs-path", placeholder: "/v1/payments/{id} or an exact path", value: f.path || "" });
  const tableHost = h("div", {});
  const more = h("div", { class: "more" });
  const go = h("button", { type: "submit", class: "btn btn-primary", text: "Apply" });
  const form = h("form", { class: "card", id: "logs-filters" }, h("div", { class: "row" }, field("Status", status), field("Interval", interval), custom, field("Path", path), h("div", { class: "field" }, "\u00a0", go)));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    STORE.setItem("tahsil.logFilters", JSON.stringify({ status: status.value, interval: interval.value, from: from.value, to: to.value, path: path.value.trim() }));
    route();
  });
  const query = { limit: 50, status: status.value, path: path.value.trim() };
  if (interval.value === "custom") {
    if (from.value) query.created_gte = new Date(from.value).toISOString();
    if (to.value) query.created_lte = new Date(to.value).toISOString();
  } else query.created_gte = new Date(Date.now() - Number(interval.value) * 1000).toISOString();
  let rows = [];
  async function load(cursor) {
    const data = await api("GET", "/v1/request-logs", { query: Object.assign({}, query, { cursor }) });
    rows = rows.concat(data.request_logs);
    clear(tableHost).appendChild(table([
      { label: "Request", render: (l) => h("div", {}, h("code", { text: `${l.method} ${l.path}` }), h("div", { class: "small muted" }, l.id, l.user ? ` · via dashboard (${l.user})` : (l.key_id ? ` · ${l.key_id}` : ""))) },
      { label: "Status", render: (l) => h("div", {}, httpBadge(l.status), l.error_code ? h("div", { class: "small muted", text: l.error_code }) : null) },
      { label: "Rate limit", render: (l) => { const o = (l.rate_limit || {}).outcome || "—"; return badge(o.replace(/_/g, " "), o === "allowed" ? "ok" : o === "limited" ? "bad" : ""); } },
      { label: "Signature", render: (l) => { const sg = l.signature || {}; return h("div", {}, badge((sg.outcome || "—").replace(/_/g, " "), statusKind(sg.outcome)), sg.drift_s !== null && sg.drift_s !== undefined ? h("div", { class: "small muted", text: `drift ${sg.drift_s} s` }) : null); } },
      { label: "Latency", num: true, render: (l) => fmtMs(l.latency_ms) },
      { label: "Body hash", render: (l) => h("code", { class: "small", title: l.body_sha256, text: l.body_sha256.slice(0, 12) }) },
      { label: "Idempotency", render: (l) => l.idempotency_key ? h("code", { class: "small", text: short(l.idempotency_key, 28) }) : "—" },
      { label: "Created", nowrap: true, render: (l) => fmtDate(l.created_at) },
    ], rows, { empty: "No requests match these filters.", class: "logs", rowData: (l) => ({ requestId: l.id, status: String(l.status) }) }));
    clear(more);
    if (data.has_more) more.appendChild(h("button", { type: "button", class: "btn", text: "Load more", onclick: () => load(data.next_cursor) }));
  }
  await load();
  return h("div", {}, pageHead("Logs", "Every API request for 30 days: status, latency, rate limit and signature outcome, body hash. Bodies are never stored."),
    form, card(null, [tableHost, more]));
}
