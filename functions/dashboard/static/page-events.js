import { api } from "./api.js";
import { EVENT_TYPES, STATUSES, TEST_EVENT } from "./constants.js";
import { clear, h } from "./dom.js";
import { fmtDate, fmtMs, short } from "./format.js";
import { route, setMode } from "./router.js";
import { state, STORE } from "./state.js";
import { badge, card, field, httpBadge, modeBadge, pageHead, select, showError, statusKind, table, toast } from "./ui.js";

const sentence = (word) => word.charAt(0).toUpperCase() + word.slice(1).replace(/_/g, " ");

export async function events(args) {
  const filters = JSON.parse(STORE.getItem("tahsil.eventFilters") || "{}");
  const modeSel = select([["test", "Test"], ["live", "Live"]], state.mode, { id: "events-mode", onchange: (ev) => setMode(ev.target.value) });
  const typeSel = select([["", "All types"], ...[...EVENT_TYPES, TEST_EVENT].map((t) => [t, t])], filters.type || "", { id: "events-type" });
  const statusSel = select([["", "Any status"], ...STATUSES.event_delivery.map((st) => [st, sentence(st)])], filters.status || "", { id: "events-status" });
  const apply = () => { STORE.setItem("tahsil.eventFilters", JSON.stringify({ type: typeSel.value, status: statusSel.value })); route(); };
  typeSel.addEventListener("change", apply); statusSel.addEventListener("change", apply);
  const detail = h("div", { id: "event-detail" });
  const tableHost = h("div", {});
  const more = h("div", { class: "more" });
  let rows = [];
  async function load(after) {
    const data = await api("GET", "/v1/events", { query: { limit: 20, type: typeSel.value, delivery_status: statusSel.value, starting_after: after } });
    rows = rows.concat(data.events);
    clear(tableHost).appendChild(table([
      { label: "Env", render: (e) => modeBadge(e.livemode ? "live" : "test") },
      { label: "Event", render: (e) => h("strong", { text: e.type }) },
      { label: "Id", render: (e) => h("code", { class: "small", text: e.id }) },
      { label: "Object", render: (e) => h("code", { class: "small", text: (e.data && e.data.object && e.data.object.id) || "" }) },
      { label: "Status", render: (e) => badge(e.delivery.status.replace(/_/g, " "), statusKind(e.delivery.status)) },
      { label: "Deliveries", num: true, render: (e) => e.delivery.endpoints === null ? "—" : `${e.delivery.finished}/${e.delivery.endpoints}` },
      { label: "Created", nowrap: true, render: (e) => fmtDate(e.created) },
    ], rows, { empty: "No events match.", class: "events", onRow: (e, tr) => { for (const r of tr.parentNode.children) r.classList.remove("selected"); tr.classList.add("selected"); showEvent(e.id, detail); }, rowData: (e) => ({ eventId: e.id, eventType: e.type }) }));
    clear(more);
    if (data.has_more) more.appendChild(h("button", { type: "button", class: "btn", text: "Load more", onclick: () => load(data.next_starting_after) }));
  }
  await load();
  if (args[0]) showEvent(args[0], detail);
  return h("div", {},
    pageHead("Events", "Every change to a payment or payment intent, with its webhook deliveries."),
    card(null, h("div", { class: "row" }, field("Mode", modeSel), field("Type", typeSel), field("Delivery status", statusSel))),
    detail, card(null, [tableHost, more]));
}

async function showEvent(id, host) {
  clear(host).appendChild(card("Event", h("div", { class: "loading", text: "Loading…" })));
  try {
    const [event, log] = await Promise.all([api("GET", `/v1/events/${id}`), api("GET", `/v1/events/${id}/deliveries`)]);
    const attempts = log.deliveries.map((d) => h("div", { class: "card delivery", dataset: { endpointId: d.endpoint_id } },
      h("div", { class: "card-head" }, h("div", {}, h("code", { text: d.url }), h("div", { class: "small muted", text: `${d.endpoint_id} · round ${d.round}` })),
        h("div", { class: "row" }, badge(d.status, statusKind(d.status)), h("button", {
          type: "button", class: "btn btn-small", text: "Redeliver here", onclick: async () => {
            try { await api("POST", `/v1/events/${id}/redeliver`, { body: { endpoint_id: d.endpoint_id } }); toast("Redelivery queued"); setTimeout(() => showEvent(id, host), 1500); } catch (e) { showError(e); }
          },
        }))),
      table([
        { label: "Attempt", num: true, render: (t) => t.round ? `${t.number} (round ${t.round + 1})` : String(t.number) },
        { label: "When", nowrap: true, render: (t) => fmtDate(t.at) },
        { label: "Response", render: (t) => t.status_code ? httpBadge(t.status_code) : badge(t.error_class || "no answer", "bad") },
        { label: "Latency", num: true, render: (t) => fmtMs(t.latency_ms) },
        { label: "Body", render: (t) => h("code", { class: "small", text: short(t.response_prefix, 80) }) },
        { label: "Next retry", nowrap: true, render: (t) => t.next_retry_at ? fmtDate(t.next_retry_at) : "—" },
      ], d.history, { empty: "No attempt yet." })));
    const payload = Object.assign({}, event); delete payload.delivery;
    clear(host).appendChild(card(`${event.type} · ${event.id}`, [
      h("div", { class: "grid grid-2" },
        h("div", {}, h("h3", { text: "Payload" }), h("pre", { class: "json", id: "event-payload", text: JSON.stringify(payload, null, 2) })),
        h("div", {}, h("h3", { text: "Deliveries and attempts" }), attempts.length ? attempts : h("p", { class: "muted", text: event.delivery.status === "no_endpoints" ? "No endpoint was subscribed to this event." : "Not fanned out yet." }))),
    ], [h("button", {
      type: "button", class: "btn", id: "redeliver", text: "Redeliver to all", onclick: async () => {
        try { const r = await api("POST", `/v1/events/${id}/redeliver`, { body: {} }); toast(`Redelivering to ${r.redelivering_to.length} endpoint(s)`); setTimeout(() => showEvent(id, host), 1500); } catch (e) { showError(e); }
      },
    }), h("button", { type: "button", class: "btn btn-ghost", text: "Close", onclick: () => clear(host) })]));
    host.scrollIntoView({ block: "nearest" });
  } catch (e) { showError(e, host); }
}
