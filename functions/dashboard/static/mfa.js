/* Two-factor authentication (TOTP): the Account page's card, and the prompt when the API answers 403 MFA_REQUIRED. */

import { sessionCall } from "./api.js";
import { clear, h } from "./dom.js";
import { state } from "./state.js";
import { card, field, notice, showError, toast } from "./ui.js";

export function mfaCard() {
  const out = h("div", { id: "mfa-setup" });
  const start = h("button", { type: "button", class: "btn", id: "mfa-start", text: "Set up an authenticator app" });
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      const setup = await sessionCall({ action: "totp_setup" }, state.token);
      const code = h("input", { id: "mfa-code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6 });
      const err = h("div", { hidden: true });
      const form = h("form", { id: "mfa-form" },
        notice("info", "Add this secret to your authenticator app (or open the otpauth link on your phone), then enter the code it shows. The secret is shown once."),
        h("dl", { class: "kv" }, h("dt", { text: "Secret" }), h("dd", {}, h("code", { class: "secret-code", text: setup.secret })),
          h("dt", { text: "Link" }), h("dd", {}, h("code", { class: "small", text: setup.otpauth_uri }))),
        field("Code from the app", code), err,
        h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", text: "Turn on two-factor authentication" })));
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault(); err.hidden = true;
        try {
          await sessionCall({ action: "totp_verify", mfa_code: code.value.trim() }, state.token);
          clear(out).appendChild(notice("ok", "Two-factor authentication is on: each sign-in now asks for a code from your app."));
          toast("Two-factor authentication is on");
        } catch (e) { showError(e, err); }
      });
      clear(out).appendChild(form);
      code.focus();
    } catch (e) { start.disabled = false; showError(e, out); }
  });
  out.appendChild(start);
  return card("Two-factor authentication", h("div", {}, h("p", { class: "muted", text: "A code from an authenticator app (TOTP) at each sign-in. Owners may be required to use it." }), out));
}
