/* The tab's session and choices, kept in sessionStorage (this tab only, gone when it closes). */

// The API's base URL: the page is /dashboard under the API's stage prefix (if any).
export const BASE = location.pathname.replace(/dashboard\/?$/, "");
export const STORE = window.sessionStorage;

export const state = { token: null, refresh: null, exp: 0, email: "", merchantId: "", role: "", mode: "test", account: null,
  pending: null, challenge: null };

export function saveSession() {
  STORE.setItem("tahsil.session", JSON.stringify({ token: state.token, refresh: state.refresh, exp: state.exp, email: state.email,
    merchantId: state.merchantId, role: state.role }));
}

export function loadSession() {
  try {
    const saved = JSON.parse(STORE.getItem("tahsil.session") || "null");
    if (saved && saved.token && (saved.exp * 1000 > Date.now() + 5000 || saved.refresh)) Object.assign(state, saved);
  } catch (e) { STORE.removeItem("tahsil.session"); }
  state.mode = STORE.getItem("tahsil.mode") === "live" ? "live" : "test";
}

export function forgetSession() {
  state.token = null; state.refresh = null; state.exp = 0; state.account = null;
  STORE.removeItem("tahsil.session");
}
