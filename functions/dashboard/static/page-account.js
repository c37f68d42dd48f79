import { api } from "./api.js";
import { PAYOUT_SCHEMES } from "./constants.js";
import { h } from "./dom.js";
import { mfaCard } from "./mfa.js";
import { route, setModeUi } from "./router.js";
import { state } from "./state.js";
import { badge, card, field, pageHead, select, showError, statusKind, toast } from "./ui.js";

export async function account() {
  const a = await api("GET", "/v1/account");
  state.account = a; setModeUi();
  const inputs = {
    legal_name: h("input", { id: "acct-legal-name", value: a.legal_name || "", maxlength: 140 }),
    mcc: h("input", { id: "acct-mcc", value: a.mcc || "", pattern: "[0-9]{4}", placeholder: "8220" }),
    support_email: h("input", { id: "acct-email", type: "email", value: a.support_email || "" }),
    support_phone: h("input", { id: "acct-phone", value: a.support_phone || "", placeholder: "+9647701234567" }),
    support_url: h("input", { id: "acct-url", type: "url", value: a.support_url || "", placeholder: "https://…" }),
  };
  const perr = h("div", { hidden: true });
  const profile = h("form", { class: "card", id: "profile-form" }, h("div", { class: "card-head" }, h("h2", { text: "Business profile" }), a.profile_id ? h("code", { class: "small muted", text: a.profile_id }) : null),
    h("div", { class: "form-grid" }, field("Legal name", inputs.legal_name), field("MCC (merchant category code)", inputs.mcc), field("Support email", inputs.support_email),
      field("Support phone (E.164)", inputs.support_phone), field("Support URL", inputs.support_url, "full")), perr,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", text: "Save profile" })));
  profile.addEventListener("submit", async (ev) => {
    ev.preventDefault(); perr.hidden = true;
    const body = {};
    for (const [k, el] of Object.entries(inputs)) { const v = el.value.trim(); if (v || a[k]) body[k] = v || null; }
    try { await api("PATCH", "/v1/account", { body }); toast("Profile saved"); route(); } catch (e) { showError(e, perr); }
  });
  const po = a.payout_destination;
  const currency = select(Object.keys(PAYOUT_SCHEMES), po ? po.currency : "IQD", { id: "payout-currency" });
  const holder = h("input", { id: "payout-holder", value: po ? po.account_holder_name : (a.legal_name || "") });
  const bank = h("input", { id: "payout-bank", value: po && po.bank_name ? po.bank_name : "" });
  const iban = h("input", { id: "payout-iban", placeholder: "IQ98 NBIQ 8501 2345 6789 012", autocomplete: "off" });
  const routing = h("input", { id: "payout-routing", placeholder: "021000021", autocomplete: "off" });
  const account = h("input", { id: "payout-account", autocomplete: "off" });
  const kind = select(["checking", "savings"], "checking", { id: "payout-type" });
  const ibanRow = field("IBAN", iban, "full");
  const abaRows = h("div", { class: "form-grid full" }, field("ABA routing number", routing), field("Account number", account), field("Account type", kind));
  const sync = () => { const isIban = PAYOUT_SCHEMES[currency.value] === "iban"; ibanRow.hidden = !isIban; abaRows.hidden = isIban; };
  currency.addEventListener("change", sync); sync();
  const oerr = h("div", { hidden: true });
  const payout = h("form", { class: "card", id: "payout-form" }, h("div", { class: "card-head" }, h("h2", { text: "Payout destination" }),
    po ? h("span", {}, badge(po.status, statusKind(po.status)), " ", h("code", { class: "small", text: `${po.currency} · ${po.scheme === "iban" ? "IBAN" : "account"} …${po.last4}` })) : badge("not set", "warn")),
    h("p", { class: "small muted", text: "Bank details are checked (IBAN check digits, ABA checksum), stored encrypted, and only the last 4 are ever shown again. Changing them needs an owner who signed in with a two-factor code in the last 15 minutes; every change is announced (account.updated) and holds payouts for 72 hours." }),
    h("div", { class: "form-grid" }, field("Currency", currency), field("Account holder (the legal name)", holder), field("Bank name", bank, "full"), ibanRow, abaRows), oerr,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", text: po ? "Replace payout destination" : "Save payout destination" })));
  payout.addEventListener("submit", async (ev) => {
    ev.preventDefault(); oerr.hidden = true;
    const dest = { currency: currency.value, account_holder_name: holder.value.trim(), bank_name: bank.value.trim() || null };
    if (PAYOUT_SCHEMES[currency.value] === "aba") Object.assign(dest, { routing_number: routing.value.trim(), account_number: account.value.trim(), account_type: kind.value });
    else dest.iban = iban.value.trim();
    try { await api("PATCH", "/v1/account", { body: { payout_destination: dest } }); toast("Payout destination saved: unverified until Tahsil checks it, payouts held 72 hours"); route(); } catch (e) { showError(e, oerr); }
  });
  return h("div", {}, pageHead("Account", `${a.name} · ${a.id}`), profile, payout, mfaCard(),
    card("Account", h("dl", { class: "kv" }, h("dt", { text: "Merchant id" }), h("dd", {}, h("code", { text: a.id })), h("dt", { text: "API version" }), h("dd", {}, h("code", { text: a.api_version })),
      h("dt", { text: "Live payments" }), h("dd", {}, a.live_enabled ? badge("enabled", "ok") : badge("not enabled", "warn"), " ", h("a", { href: "#/golive", text: "Go-live readiness" })))));
}
