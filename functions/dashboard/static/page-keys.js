import { api } from "./api.js";
import { SCOPES } from "./constants.js";
import { $, clear, h } from "./dom.js";
import { fmtDate } from "./format.js";
import { route } from "./router.js";
import { state } from "./state.js";
import { armed, badge, card, field, modeBadge, pageHead, secretBox, select, showError, statusKind, table, toast } from "./ui.js";

export async function keys() {
  const data = await api("GET", "/v1/api-keys", { query: { mode: state.mode } });
  const out = h("div", { id: "key-secret" });
  const formHost = h("div", {});
  const showForm = () => { clear(formHost).appendChild(keyForm(out)); };
  const rows = data.api_keys;
  return h("div", {},
    pageHead("API keys", `Secret keys (sk_) stay on your servers; publishable keys (pk_) are for browsers. ${state.mode === "live" ? "Live" : "Test"} mode keys shown.`,
      h("button", { type: "button", class: "btn btn-primary", id: "new-key", text: "Create key", onclick: showForm })),
    out, formHost,
    card(null, table([
      { label: "Name", render: (k) => h("div", {}, h("strong", { text: k.name || "—" }), " ", modeBadge(k.mode), h("div", { class: "small muted", text: k.id })) },
      { label: "Token", nowrap: true, render: (k) => h("code", { title: `${k.type} key`, text: `${k.prefix}…${k.last4}` }) },
      { label: "Status", render: (k) => badge(k.status, statusKind(k.status)) },
      { label: "Permissions", render: (k) => h("span", { title: k.scopes.join(", "), text: k.scopes[0] + (k.scopes.length > 1 ? ` +${k.scopes.length - 1}` : "") }) },
      { label: "IP allowlist", render: (k) => k.ip_allowlist.length ? h("code", { text: k.ip_allowlist.join(", ") }) : h("span", { class: "muted", text: "any" }) },
      { label: "Last used", render: (k) => fmtDate(k.last_used_at) },
      { label: "Created", nowrap: true, render: (k) => fmtDate(k.created_at) },
      { label: "", nowrap: true, render: (k) => k.status === "active" ? h("div", { class: "row" }, rollControl(k, out), armed("Revoke", "Confirm revoke", async () => {
        await api("DELETE", `/v1/api-keys/${k.id}`); toast(`Key ${k.prefix}…${k.last4} revoked`); route();
      })) : null },
    ], rows, { empty: `No ${state.mode} keys.`, rowData: (k) => ({ keyId: k.id }) })));
}

// Roll asks when the old key should stop (now, or after a grace period) before it acts.
function rollControl(k, out) {
  const grace = select([["0", "old key stops now"], ["3600", "old key works 1 more hour"], ["86400", "old key works 24 more hours"]], "0",
    { class: "roll-grace", "aria-label": "When the old key stops" });
  const host = h("span", { class: "row" });
  const open = h("button", { type: "button", class: "btn btn-small", text: "Roll…", onclick: () => { clear(host).append(grace, confirmRoll); } });
  const confirmRoll = h("button", {
    type: "button", class: "btn btn-small btn-primary", text: "Roll key", onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        const made = await api("POST", `/v1/api-keys/${k.id}/roll`, { body: { expires_in: Number(grace.value) } });
        await keys().then((view) => { const main = $("main"); clear(main).appendChild(view); });
        clear($("key-secret")).appendChild(secretBox(`New key for ${made.name}`, made.secret,
          `The old key ${k.prefix}…${k.last4} ${grace.value === "0" ? "has stopped working" : "keeps working until " + fmtDate(new Date(Date.now() + Number(grace.value) * 1000).toISOString())}. Copy the new one now: it is shown once.`,
          made.signing_secret ? h("p", {}, "Signing secret: ", h("code", { text: made.signing_secret })) : null));
      } catch (e) { showError(e); ev.target.disabled = false; }
    },
  });
  host.appendChild(open);
  return host;
}

function keyForm(out) {
  const name = h("input", { id: "key-name", required: true, maxlength: 100, placeholder: "Checkout server" });
  const type = select([["secret", "Secret (server)"], ["publishable", "Publishable (browser)"]], "secret", { id: "key-type" });
  const scopeBoxes = Object.entries(SCOPES).map(([sc, what]) => h("label", { title: what }, h("input", { type: "checkbox", value: sc, checked: sc === "payments:create" || sc === "payments:read" }), sc));
  const allow = h("textarea", { id: "key-allowlist", placeholder: "203.0.113.7/32\n198.51.100.0/24" });
  const signing = h("input", { type: "checkbox", id: "key-signing" });
  const err = h("div", { hidden: true });
  const form = h("form", { class: "card", id: "key-form" },
    h("div", { class: "card-head" }, h("h2", { text: `New ${state.mode} key` })),
    h("div", { class: "form-grid" },
      field("Name", name), field("Type", type),
      h("div", { class: "field full" }, "Scopes", h("div", { class: "checks" }, scopeBoxes)),
      field("IP allowlist (one address or CIDR per line; empty: any)", allow, "full"),
      h("label", { class: "full row" }, signing, "Require signed requests (Tahsil-Signature)")),
    err,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", text: "Create key" }),
      h("button", { type: "button", class: "btn", text: "Cancel", onclick: () => form.remove() })));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const body = {
      name: name.value.trim(), type: type.value, mode: state.mode,
      scopes: scopeBoxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value),
      ip_allowlist: allow.value.split(/[\s,]+/).filter(Boolean), require_signing: signing.checked,
    };
    try {
      const made = await api("POST", "/v1/api-keys", { body });
      const view = await keys();
      clear($("main")).appendChild(view);
      clear($("key-secret")).appendChild(secretBox(`Your new key: ${made.name}`, made.secret, null,
        made.signing_secret ? h("p", {}, "Signing secret (also shown once): ", h("code", { text: made.signing_secret })) : null));
    } catch (e) { showError(e, err); }
  });
  setTimeout(() => name.focus(), 0);
  return form;
}
