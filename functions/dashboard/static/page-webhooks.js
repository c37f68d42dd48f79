import { api } from "./api.js";
import { EVENT_TYPES } from "./constants.js";
import { $, clear, h } from "./dom.js";
import { fmtDate, fmtNum } from "./format.js";
import { route } from "./router.js";
import { state } from "./state.js";
import { armed, badge, card, field, httpBadge, notice, pageHead, secretBox, showError, statusKind, table, toast } from "./ui.js";

export async function webhooks() {
  const data = await api("GET", "/v1/webhook-endpoints");
  const out = h("div", { id: "endpoint-secret" });
  const formHost = h("div", {});
  const list = data.webhook_endpoints;
  return h("div", {},
    pageHead("Webhooks", "Tahsil POSTs signed events (Standard Webhooks) to your endpoints and retries for up to a day.",
      h("button", { type: "button", class: "btn btn-primary", id: "add-endpoint", text: "Add endpoint", onclick: () => { clear(formHost).appendChild(endpointForm(out)); } })),
    out, formHost,
    list.length ? list.map((e) => endpointCard(e, out)) : card(null, h("div", { class: "empty", text: `No ${state.mode} endpoints yet. Add one to receive payment events.` })));
}

function endpointForm(out) {
  const url = h("input", { id: "endpoint-url", type: "url", required: true, placeholder: state.mode === "live" ? "https://shop.example/webhooks/tahsil" : "https://shop.example/webhooks/tahsil (or http://localhost:… locally)" });
  const desc = h("input", { id: "endpoint-description", maxlength: 500, placeholder: "Order fulfilment" });
  const all = h("input", { type: "radio", name: "ev-mode", value: "all", checked: true, id: "endpoint-all-events" });
  const some = h("input", { type: "radio", name: "ev-mode", value: "some", id: "endpoint-some-events" });
  const boxes = EVENT_TYPES.map((t) => h("label", {}, h("input", { type: "checkbox", value: t, checked: t === "payment.captured" }), t));
  const picker = h("div", { class: "checks", hidden: true }, boxes);
  all.addEventListener("change", () => { picker.hidden = true; });
  some.addEventListener("change", () => { picker.hidden = false; });
  const err = h("div", { hidden: true });
  const form = h("form", { class: "card", id: "endpoint-form" },
    h("div", { class: "card-head" }, h("h2", { text: `New ${state.mode} endpoint` })),
    h("div", { class: "form-grid" }, field("Endpoint URL", url, "full"), field("Description", desc, "full"),
      h("div", { class: "field full" }, "Events to send",
        h("div", { class: "row" }, h("label", { class: "row" }, all, "All events"), h("label", { class: "row" }, some, "Select events")), picker)),
    err,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", text: "Add endpoint" }),
      h("button", { type: "button", class: "btn", text: "Cancel", onclick: () => form.remove() })));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const events = all.checked ? ["*"] : boxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    try {
      const made = await api("POST", "/v1/webhook-endpoints", { body: { url: url.value.trim(), enabled_events: events, description: desc.value.trim() || null } });
      const view = await webhooks();
      clear($("main")).appendChild(view);
      clear($("endpoint-secret")).appendChild(secretBox(`Signing secret for ${made.url}`, made.secret,
        "Verify every delivery with this secret (webhook-signature header). It is shown once: copy it now."));
    } catch (e) { showError(e, err); }
  });
  setTimeout(() => url.focus(), 0);
  return form;
}

function endpointCard(e, out) {
  const log = h("div", { class: "delivery-log" });
  const loadLog = async () => {
    clear(log).appendChild(h("div", { class: "loading", text: "Loading deliveries…" }));
    try {
      const data = await api("GET", `/v1/webhook-endpoints/${e.id}/deliveries`, { query: { limit: 20 } });
      clear(log).appendChild(table([
        { label: "Status", render: (d) => badge(d.status, statusKind(d.status)) },
        { label: "Response", render: (d) => d.last_status_code ? httpBadge(d.last_status_code) : h("span", { class: "muted", text: "—" }) },
        { label: "Attempt", num: true, render: (d) => fmtNum(d.attempts) },
        { label: "Event", render: (d) => h("div", {}, d.event_type, h("div", {}, h("a", { href: `#/events/${d.event_id}`, class: "small mono", text: d.event_id }))) },
        { label: "Created", nowrap: true, render: (d) => fmtDate(d.created_at) },
        { label: "Next retry", nowrap: true, render: (d) => d.next_retry_at ? fmtDate(d.next_retry_at) : "—" },
      ], data.deliveries, { empty: "No deliveries to this endpoint yet.", class: "deliveries" }));
    } catch (err) { showError(err, log); }
  };
  const enabled = e.status === "enabled";
  const actions = [
    h("button", {
      type: "button", class: "btn btn-small", text: "Send test event", dataset: { action: "test" }, onclick: async (ev) => {
        ev.target.disabled = true;
        try { const sent = await api("POST", `/v1/webhook-endpoints/${e.id}/test`); toast(`Test event ${sent.id} queued for ${e.url}`); setTimeout(loadLog, 1500); } catch (err) { showError(err); }
        ev.target.disabled = false;
      },
    }),
    h("button", {
      type: "button", class: "btn btn-small", text: enabled ? "Disable" : "Enable", onclick: async () => {
        try { await api("PATCH", `/v1/webhook-endpoints/${e.id}`, { body: { enabled: !enabled } }); route(); } catch (err) { showError(err); }
      },
    }),
    armed("Rotate secret", "Confirm rotate", async () => {
      const made = await api("POST", `/v1/webhook-endpoints/${e.id}/rotate-secret`);
      clear(out).appendChild(secretBox(`New signing secret for ${e.url}`, made.secret,
        `The old secret keeps signing beside it until ${fmtDate(made.previous_secret_expires_at)}. Shown once: copy it now.`));
      window.scrollTo(0, 0);
    }),
    armed("Delete", "Confirm delete", async () => { await api("DELETE", `/v1/webhook-endpoints/${e.id}`); toast("Endpoint deleted"); route(); }),
  ];
  const el = h("section", { class: "card endpoint", dataset: { endpointId: e.id } },
    h("div", { class: "card-head" },
      h("div", {}, h("h2", {}, h("code", { text: e.url })), h("div", { class: "small muted" }, `${e.id} · created ${fmtDate(e.created_at)}`, e.description ? ` · ${e.description}` : "")),
      h("div", { class: "row" }, badge(e.status, statusKind(e.status)), actions)),
    e.disabled_reason ? notice("warn", e.disabled_reason) : null,
    h("p", { class: "small" }, h("span", { class: "muted", text: "Events: " }), e.enabled_events.join(", ") === "*" ? "all events" : e.enabled_events.join(", ")),
    h("h3", { text: "Delivery log" }), log);
  loadLog();
  return el;
}
