/* Calls to the /v1 API and to POST /dashboard/session, and the session's life: renewal and its end.
 *
 * Every API call sends the access token as `Authorization: Bearer` with `Tahsil-Mode: test|live`, and a
 * fresh Idempotency-Key on a POST. The refresh token renews the access token before it expires (and once
 * after a 401 SESSION_EXPIRED); when the session ends, the handler given to onSessionEnd shows the sign-in.
 */

import { BASE, forgetSession, saveSession, state } from "./state.js";

export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `request failed (${status})`);
    this.status = status; this.code = error && error.code; this.param = error && error.param;
  }
}

function idemKey() {
  const bytes = new Uint8Array(12); crypto.getRandomValues(bytes);
  return "dash-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function api(method, path, opts) {
  opts = opts || {};
  let url = BASE + path.replace(/^\//, "");
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const text = q.toString();
    if (text) url += "?" + text;
  }
  const headers = { Authorization: "Bearer " + state.token, "Tahsil-Mode": opts.mode || state.mode, Accept: "application/json" };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST") headers["Idempotency-Key"] = idemKey();
  const res = await fetch(url, { method, headers, body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined, credentials: "omit", cache: "no-store" });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401) {
    if (data && data.error && data.error.code === "SESSION_EXPIRED" && !opts.renewed && await renew()) {
      return api(method, path, Object.assign({}, opts, { renewed: true }));
    }
    endSession((data && data.error && data.error.message) || "Your session has ended: sign in again.");
    throw new ApiError(401, data && data.error);
  }
  if (!res.ok || !data || !data.success) throw new ApiError(res.status, data && data.error);
  return data.data;
}

// POST /dashboard/session: sign in, answer a challenge, refresh, sign out, set up TOTP.
export async function sessionCall(body, token) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(BASE + "dashboard/session", { method: "POST", headers, body: JSON.stringify(body), credentials: "omit", cache: "no-store" });
  const data = await res.json().catch(() => null);
  if (!res.ok || !data || !data.success) throw new ApiError(res.status, data && data.error);
  return data.data;
}

export function takeSession(out) {
  state.token = out.access_token; state.exp = Math.floor(Date.now() / 1000) + out.expires_in;
  if (out.refresh_token) state.refresh = out.refresh_token;
  state.email = out.email || state.email; state.merchantId = out.merchant_id || state.merchantId; state.role = out.role || state.role;
  saveSession(); scheduleRenewal();
}

// A new access token from the refresh token; one renewal at a time. False once the session has ended.
export function renew() {
  if (!state.refresh) return Promise.resolve(false);
  if (!renew.pending) {
    renew.pending = sessionCall({ action: "refresh", refresh_token: state.refresh })
      .then((out) => { takeSession(out); return true; }, () => false)
      .finally(() => { renew.pending = null; });
  }
  return renew.pending;
}

export function scheduleRenewal() {
  clearTimeout(scheduleRenewal.timer);
  scheduleRenewal.timer = setTimeout(async () => {
    if (state.token && !(await renew())) endSession("Your session has ended: sign in again.");
  }, Math.max(0, state.exp * 1000 - Date.now() - 120000));
}

let sessionEnded = () => {};
export function onSessionEnd(handler) { sessionEnded = handler; }

// Signing out (``everywhere``: Cognito's global sign-out too), or the session ran out.
export function endSession(message, everywhere) {
  if (everywhere && state.token) sessionCall({ action: "sign_out" }, state.token).catch(() => null);
  clearTimeout(scheduleRenewal.timer);
  forgetSession();
  sessionEnded(message);
}
