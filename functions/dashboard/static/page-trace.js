import { api } from "./api.js";
import { FULFILLABLE } from "./constants.js";
import { h } from "./dom.js";
import { fmtDate, money } from "./format.js";
import { route } from "./router.js";
import { state } from "./state.js";
import { badge, card, field, ids, pageHead, showError, stat, statusKind, table, toast } from "./ui.js";

export async function trace(args) {
  const input = h("input", { id: "trace-id", placeholder: "pay_…", value: args[0] || "", required: true, pattern: "pay_[A-Za-z0-9]+" });
  const form = h("form", { class: "card", id: "trace-form" }, h("div", { class: "row" }, field("Payment id", input), h("div", { class: "field" }, "\u00a0", h("button", { type: "submit", class: "btn btn-primary", text: "Trace" }))));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); location.hash = `#/trace/${encodeURIComponent(input.value.trim())}`; });
  const head = pageHead("Integration trace", "What happened after the customer paid: the checkout request, capture, signed webhook and your answer, fulfillment, with the ids support needs.");
  if (!args[0]) {
    const recent = await api("GET", "/v1/payments", { query: { limit: 10 } });
    return h("div", {}, head, form, card("Recent payments", table([
      { label: "Payment", render: (p) => h("code", { text: p.id }) },
      { label: "Amount", num: true, render: (p) => money(p.amount, p.currency) },
      { label: "Status", render: (p) => badge(p.status, statusKind(p.status)) },
      { label: "Description", render: (p) => p.description || "—" },
      { label: "Created", nowrap: true, render: (p) => fmtDate(p.created_at) },
      { label: "", render: (p) => h("a", { class: "btn btn-small", href: `#/trace/${p.id}`, text: "Trace" }) },
    ], recent.payments, { empty: `No ${state.mode} payments yet.`, onRow: (p) => { location.hash = `#/trace/${p.id}`; } })));
  }
  const t = await api("GET", `/v1/payments/${encodeURIComponent(args[0])}/trace`);
  const p = t.payment;
  const ref = h("input", { id: "fulfillment-reference", maxlength: 100, placeholder: "SCH-2026-00041" });
  const ferr = h("div", { hidden: true });
  const fform = h("form", { class: "row", id: "fulfillment-form" }, field("Fulfillment reference", ref), h("div", { class: "field" }, "\u00a0", h("button", { type: "submit", class: "btn btn-primary", text: "Record fulfillment" })), ferr);
  fform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await api("POST", `/v1/payments/${p.id}/fulfillment`, { body: { reference: ref.value.trim() } }); toast("Fulfillment recorded"); route(); } catch (e) { showError(e, ferr); }
  });
  return h("div", {}, head, form,
    h("div", { class: "grid grid-4 stack" }, stat("Payment", money(p.amount, p.currency), p.id, "trace-payment"), stat("Status", t.status, p.captured_at ? `captured ${fmtDate(p.captured_at)}` : null, "trace-status"),
      stat("Hand-off", t.complete ? "complete" : "in progress", `${t.handoff.filter((s2) => statusKind(s2.status) === "ok").length} of ${t.handoff.length} steps`, "trace-complete"),
      stat("Payment intent", t.payment_intent ? t.payment_intent.id : "—", t.payment_intent ? "hosted checkout" : "API integration")),
    card("Integration hand-off", table([
      { label: "Step", render: (s2) => h("code", { text: s2.step }) },
      { label: "Actor", render: (s2) => s2.actor }, { label: "Action", render: (s2) => s2.action },
      { label: "Business question", render: (s2) => s2.question },
      { label: "Result", render: (s2) => h("strong", { text: s2.result }) },
      { label: "Evidence", render: (s2) => s2.evidence.map((e) => h("div", {}, h("code", { class: "small", text: e }))) },
      { label: "Status", render: (s2) => badge(s2.status.replace(/_/g, " "), statusKind(s2.status)) },
    ], t.handoff, { class: "handoff", rowData: (s2) => ({ step: s2.step, status: s2.status }) })),
    t.fulfillment ? null : card("Fulfillment", [FULFILLABLE.includes(p.status) ? fform : h("p", { class: "muted", text: "Only a captured payment can be fulfilled." })]),
    card("Timeline", h("ol", { class: "timeline" }, t.timeline.map((e) => h("li", { dataset: { kind: e.kind } },
      h("div", { class: "small muted", text: fmtDate(e.at, true) }),
      h("div", {}, badge(e.kind.replace(/_/g, " "), e.kind === "request" ? "info" : e.kind === "webhook_attempt" ? statusKind(e.status) : "")),
      h("div", {}, h("div", {}, h("strong", { text: e.actor }), " · ", e.action, " → ", h("strong", { text: e.result })), ids(e.ids)))))),
    card("Ids for support", h("dl", { class: "kv" }, Object.entries(t.ids).map(([k, v]) => [h("dt", { text: k.replace(/_/g, " ") }), h("dd", {}, v.length ? v.map((x) => h("div", {}, h("code", { class: "small", text: x }))) : "—")]))));
}
