/* Signing in (password, first-time new password, TOTP code) and entering the dashboard's shell. */

import { api, renew, endSession, scheduleRenewal, sessionCall, takeSession } from "./api.js";
import { $ } from "./dom.js";
import { route, setModeUi } from "./router.js";
import { state } from "./state.js";

export function showSignIn(message) {
  $("shell").hidden = true; $("signin").hidden = false;
  $("signin-new-row").hidden = true; $("signin-mfa-row").hidden = true; $("signin-password-row").hidden = false;
  $("signin-submit").textContent = "Sign in";
  const n = $("signin-notice");
  n.hidden = !message; n.textContent = message || "";
  $("signin-error").hidden = true;
  state.pending = null; state.challenge = null;
  setTimeout(() => $("signin-email").focus(), 0);
}

export async function submitSignIn(ev) {
  ev.preventDefault();
  const err = $("signin-error"); err.hidden = true;
  const email = $("signin-email").value.trim();
  const body = { email };
  if (state.pending && state.challenge === "SOFTWARE_TOKEN_MFA") { body.session = state.pending; body.mfa_code = $("signin-mfa-code").value.trim(); }
  else if (state.pending) { body.session = state.pending; body.new_password = $("signin-new-password").value; }
  else body.password = $("signin-password").value;
  const btn = $("signin-submit"); btn.disabled = true;
  try {
    const out = await sessionCall(body);
    if (out.challenge === "NEW_PASSWORD_REQUIRED") {
      state.pending = out.session; state.challenge = out.challenge;
      $("signin-password-row").hidden = true; $("signin-mfa-row").hidden = true; $("signin-new-row").hidden = false;
      $("signin-notice").textContent = "First sign-in: choose a new password (at least 12 characters, upper and lower case, a digit).";
      $("signin-notice").hidden = false; $("signin-submit").textContent = "Set password and sign in";
      $("signin-new-password").focus();
      return;
    }
    if (out.challenge === "SOFTWARE_TOKEN_MFA") {
      state.pending = out.session; state.challenge = out.challenge;
      $("signin-password-row").hidden = true; $("signin-new-row").hidden = true; $("signin-mfa-row").hidden = false;
      $("signin-notice").textContent = "Enter the 6-digit code from your authenticator app.";
      $("signin-notice").hidden = false; $("signin-submit").textContent = "Verify and sign in";
      $("signin-mfa-code").value = ""; $("signin-mfa-code").focus();
      return;
    }
    state.pending = null; state.challenge = null;
    takeSession(out);
    $("signin-password").value = ""; $("signin-new-password").value = ""; $("signin-mfa-code").value = "";
    await enter();
  } catch (e) {
    err.textContent = e.message; err.hidden = false;
  } finally { btn.disabled = false; }
}

export async function enter() {
  if (state.exp * 1000 < Date.now() + 5000 && !(await renew())) { endSession("Your session has ended: sign in again."); return; }
  scheduleRenewal();
  $("signin").hidden = true; $("shell").hidden = false;
  $("user-email").textContent = state.email;
  setModeUi();
  try {
    state.account = await api("GET", "/v1/account");
    $("merchant-name").textContent = state.account.legal_name || state.account.name;
  } catch (e) { if (!state.token) return; }
  setModeUi();
  if (!location.hash || location.hash === "#") location.hash = "#/overview"; else route();
}
