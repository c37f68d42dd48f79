/* Tahsil dashboard: a small single-page app over the /v1 API.
 *
 * Sign-in: POST /dashboard/session (Cognito, server side) answers an access token and a refresh
 * token, kept in sessionStorage for this tab only. Every API call sends the access token as
 * `Authorization: Bearer` with `Tahsil-Mode: test|live`; the refresh token renews it before it
 * expires (and once after a 401 SESSION_EXPIRED). Signing out is Cognito's global sign-out. A user
 * with TOTP MFA answers a code at sign-in, and sets the app up from the Account page (or the prompt
 * shown when the API answers 403 MFA_REQUIRED). The page builds its DOM with textContent and createElement only
 * (never HTML strings built from data), and draws its charts as inline SVG: no library, no CDN, so the
 * CSP stays `script-src 'self'; connect-src 'self'`.
 */
"use strict";

(function () {
  const BASE = location.pathname.replace(/dashboard\/?$/, "");
  const STORE = window.sessionStorage;
  const SCOPES = ["payments:create", "payments:write", "payments:read", "refunds:create", "payment_intents:write",
    "payment_intents:read", "webhooks:write", "webhooks:read", "events:read", "keys:write", "keys:read", "logs:read",
    "account:read", "account:write", "payouts:write"];
  const EVENT_TYPES = ["payment.authorized", "payment.captured", "payment.voided", "payment.refunded", "payment.failed",
    "payment.expired", "payment.authorization_expiring",
    "payment.capture_failed", "payment.void_failed", "payment.refund_failed", "payment_intent.created", "payment_intent.succeeded",
    "payment_intent.canceled", "payment_intent.payment_failed", "payment_intent.expired", "account.updated"];
  const EXPONENTS = { JPY: 0, KRW: 0, IQD: 3, KWD: 3, BHD: 3, JOD: 3, OMR: 3, TND: 3, LYD: 3 };
  const IBAN_CURRENCIES = ["EUR", "TRY", "MAD", "IQD", "AED", "SAR", "QAR", "BHD", "KWD", "JOD", "EGP", "TND", "LYD",
    "GBP", "CHF", "PLN", "SEK", "NOK", "DKK"];

  const state = { token: null, refresh: null, exp: 0, email: "", merchantId: "", role: "", mode: "test", account: null,
    pending: null, challenge: null };

  // ------------------------------------------------------------------ DOM helpers

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k in el && typeof v !== "string") el[k] = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    append(el, kids);
    return el;
  }

  function append(el, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  const SVGNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined) continue;
      el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  const $ = (id) => document.getElementById(id);

  function fmtDate(iso, withYear) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const opts = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
    if (withYear) opts.year = "numeric";
    return d.toLocaleString("en-US", opts);
  }
  function fmtNum(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
  function fmtPct(n) { return n === null || n === undefined ? "—" : `${n}%`; }
  function fmtMs(n) { return n === null || n === undefined ? "—" : `${Math.round(n)} ms`; }
  function money(amount, currency) {
    const exp = EXPONENTS[currency] === undefined ? 2 : EXPONENTS[currency];
    const major = amount / Math.pow(10, exp);
    return `${major.toLocaleString("en-US", { minimumFractionDigits: exp, maximumFractionDigits: exp })} ${currency}`;
  }
  function short(text, n) { text = String(text || ""); return text.length > n ? text.slice(0, n) + "…" : text; }

  function badge(text, kind) { return h("span", { class: `badge${kind ? " badge-" + kind : ""}`, text }); }
  function statusKind(status) {
    const v = String(status);
    if (/^(passed|delivered|active|enabled|captured|succeeded|approved|fulfilled|ready_for_approval|traceable|installed|latest|current|verified|recorded|authorized)$/.test(v)) return "ok";
    if (/^(failed|denied|revoked|disabled|rejected|blocked|not_ready|voided|expired|limited|bad)$/.test(v)) return "bad";
    if (/^(pending|retrying|requested|in_review|rolled|partial|partially_refunded|refunded|missing|no_endpoint|no_endpoints|unverified|warn)$/.test(v)) return "warn";
    return "";
  }
  function httpBadge(code) {
    if (code === null || code === undefined) return badge("no answer", "bad");
    return badge(String(code), code < 300 ? "ok" : code < 500 && code !== 429 ? "warn" : "bad");
  }
  function modeBadge(mode) { return badge(mode, mode === "live" ? "live" : "test"); }

  function card(title, body, actions) {
    return h("section", { class: "card" },
      title || actions ? h("div", { class: "card-head" }, title ? h("h2", { text: title }) : null, actions ? h("div", { class: "row" }, actions) : null) : null,
      body);
  }

  function table(columns, rows, opts) {
    opts = opts || {};
    if (!rows.length) return h("div", { class: "empty", text: opts.empty || "Nothing here yet." });
    const cls = (c) => [c.num ? "num" : "", c.nowrap ? "nowrap" : ""].join(" ").trim() || null;
    const thead = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: cls(c), text: c.label }))));
    const tbody = h("tbody", {}, rows.map((row) => {
      const tr = h("tr", { class: opts.onRow ? "clickable" : null },
        columns.map((c) => h("td", { class: cls(c) }, c.render(row))));
      if (opts.onRow) tr.addEventListener("click", (ev) => { if (!ev.target.closest("button, a, input, select")) opts.onRow(row, tr); });
      if (opts.rowData) Object.assign(tr.dataset, opts.rowData(row));
      return tr;
    }));
    return h("div", { class: "table-wrap" }, h("table", { class: opts.class || null }, thead, tbody));
  }

  function stat(label, value, sub, key) {
    return h("div", { class: "stat", dataset: key ? { stat: key } : null },
      h("div", { class: "stat-label", text: label }), h("div", { class: "stat-value", text: value }),
      sub ? h("div", { class: "stat-sub", text: sub }) : null);
  }

  function notice(kind, text) { return h("p", { class: `notice notice-${kind}`, text }); }

  function toast(text) {
    const el = $("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 4500);
  }

  function secretBox(title, value, note, extra) {
    const code = h("code", { class: "secret-code", text: value });
    const copy = h("button", {
      type: "button", class: "btn btn-small", text: "Copy", onclick: async () => {
        try { await navigator.clipboard.writeText(value); copy.textContent = "Copied"; } catch (e) {
          const range = document.createRange(); range.selectNodeContents(code);
          const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range); copy.textContent = "Selected";
        }
      },
    });
    return h("div", { class: "secret", dataset: { secret: "shown-once" } },
      h("h3", { text: title }), h("div", { class: "secret-value" }, code, copy), extra || null,
      h("p", { class: "small muted", text: note || "Copy it now: it is shown once and never again." }));
  }

  // A destructive action asks twice: the first click arms it, the second acts.
  function armed(label, confirmLabel, action) {
    const btn = h("button", { type: "button", class: "btn btn-small btn-danger", text: label });
    let timer = null;
    btn.addEventListener("click", async () => {
      if (!btn.classList.contains("armed")) {
        btn.classList.add("armed"); btn.textContent = confirmLabel;
        timer = setTimeout(() => { btn.classList.remove("armed"); btn.textContent = label; }, 5000);
        return;
      }
      clearTimeout(timer);
      btn.disabled = true;
      try { await action(); } catch (e) { showError(e); btn.disabled = false; btn.classList.remove("armed"); btn.textContent = label; }
    });
    return btn;
  }

  function field(label, input, cls) { return h("label", { class: `field${cls ? " " + cls : ""}` }, label, input); }
  function select(options, value, props) {
    const el = h("select", props || {});
    for (const opt of options) {
      const [v, text] = Array.isArray(opt) ? opt : [opt, opt];
      el.appendChild(h("option", { value: v, text, selected: v === value }));
    }
    return el;
  }

  function ids(obj) {
    return h("div", { class: "ids" }, Object.entries(obj || {}).filter(([, v]) => v).map(([k, v]) =>
      h("span", { class: "small" }, h("span", { class: "muted", text: k.replace(/_/g, " ") + " " }), h("code", { text: v }))));
  }

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || `request failed (${status})`);
      this.status = status; this.code = error && error.code; this.param = error && error.param;
    }
  }

  function idemKey() {
    const bytes = new Uint8Array(12); crypto.getRandomValues(bytes);
    return "dash-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, path, opts) {
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
      signOut((data && data.error && data.error.message) || "Your session has ended: sign in again.");
      throw new ApiError(401, data && data.error);
    }
    if (!res.ok || !data || !data.success) throw new ApiError(res.status, data && data.error);
    return data.data;
  }

  function showError(e, where) {
    const text = e instanceof ApiError ? `${e.message}${e.code ? ` (${e.code})` : ""}` : String(e && e.message || e);
    if (where) { clear(where); where.appendChild(notice("bad", text)); where.hidden = false; } else toast(text);
  }

  // ------------------------------------------------------------------ session

  function saveSession() {
    STORE.setItem("tahsil.session", JSON.stringify({ token: state.token, refresh: state.refresh, exp: state.exp, email: state.email,
      merchantId: state.merchantId, role: state.role }));
  }

  function loadSession() {
    try {
      const saved = JSON.parse(STORE.getItem("tahsil.session") || "null");
      if (saved && saved.token && (saved.exp * 1000 > Date.now() + 5000 || saved.refresh)) Object.assign(state, saved);
    } catch (e) { STORE.removeItem("tahsil.session"); }
    state.mode = STORE.getItem("tahsil.mode") === "live" ? "live" : "test";
  }

  async function sessionCall(body, token) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const res = await fetch(BASE + "dashboard/session", { method: "POST", headers, body: JSON.stringify(body), credentials: "omit", cache: "no-store" });
    const data = await res.json().catch(() => null);
    if (!res.ok || !data || !data.success) throw new ApiError(res.status, data && data.error);
    return data.data;
  }

  function takeSession(out) {
    state.token = out.access_token; state.exp = Math.floor(Date.now() / 1000) + out.expires_in;
    if (out.refresh_token) state.refresh = out.refresh_token;
    state.email = out.email || state.email; state.merchantId = out.merchant_id || state.merchantId; state.role = out.role || state.role;
    saveSession(); scheduleRenewal();
  }

  // A new access token from the refresh token; one renewal at a time. False once the session has ended.
  function renew() {
    if (!state.refresh) return Promise.resolve(false);
    if (!renew.pending) {
      renew.pending = sessionCall({ action: "refresh", refresh_token: state.refresh })
        .then((out) => { takeSession(out); return true; }, () => false)
        .finally(() => { renew.pending = null; });
    }
    return renew.pending;
  }

  function scheduleRenewal() {
    clearTimeout(scheduleRenewal.timer);
    scheduleRenewal.timer = setTimeout(async () => {
      if (state.token && !(await renew())) signOut("Your session has ended: sign in again.");
    }, Math.max(0, state.exp * 1000 - Date.now() - 120000));
  }

  function signOut(message, everywhere) {
    if (everywhere && state.token) sessionCall({ action: "sign_out" }, state.token).catch(() => null);
    clearTimeout(scheduleRenewal.timer);
    state.token = null; state.refresh = null; state.exp = 0; state.account = null;
    STORE.removeItem("tahsil.session");
    showSignIn(message);
  }

  function showSignIn(message) {
    $("shell").hidden = true; $("signin").hidden = false;
    $("signin-new-row").hidden = true; $("signin-mfa-row").hidden = true; $("signin-password-row").hidden = false;
    $("signin-submit").textContent = "Sign in";
    const n = $("signin-notice");
    n.hidden = !message; n.textContent = message || "";
    $("signin-error").hidden = true;
    state.pending = null; state.challenge = null;
    setTimeout(() => $("signin-email").focus(), 0);
  }

  async function submitSignIn(ev) {
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

  async function enter() {
    if (state.exp * 1000 < Date.now() + 5000 && !(await renew())) { signOut("Your session has ended: sign in again."); return; }
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

  // ------------------------------------------------------------------ mode

  function setModeUi() {
    for (const btn of document.querySelectorAll(".mode-btn")) btn.setAttribute("aria-pressed", String(btn.dataset.mode === state.mode));
    const banner = $("mode-banner");
    banner.className = `mode-banner ${state.mode}`;
    banner.dataset.mode = state.mode;
    if (state.mode === "test") banner.textContent = "Test mode: you are looking at test data. Test payments move no money.";
    else if (state.account && !state.account.live_enabled) banner.textContent = "Live mode: live payments are disabled until your go-live review is approved.";
    else banner.textContent = "Live mode: real customers, real money.";
  }

  function setMode(mode) {
    if (mode === state.mode) return;
    state.mode = mode; STORE.setItem("tahsil.mode", mode);
    setModeUi(); route();
  }

  // ------------------------------------------------------------------ routing

  const PAGES = {};
  let renderSerial = 0;

  async function route() {
    if (!state.token) return;
    const parts = (location.hash.replace(/^#\/?/, "") || "overview").split("/");
    const name = PAGES[parts[0]] ? parts[0] : "overview";
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
    const main = $("main");
    const serial = ++renderSerial;
    clear(main).appendChild(h("div", { class: "loading", text: "Loading…" }));
    main.dataset.page = name;
    delete main.dataset.ready;
    try {
      const view = await PAGES[name](parts.slice(1).map(decodeURIComponent));
      if (serial !== renderSerial) return;
      clear(main).appendChild(view);
      main.dataset.ready = name;
    } catch (e) {
      if (serial !== renderSerial || !state.token) return;
      if (e instanceof ApiError && e.code === "MFA_REQUIRED") {
        clear(main).appendChild(h("div", {}, pageHead("Turn on two-factor authentication"), notice("warn", e.message), mfaCard()));
        main.dataset.ready = "mfa";
        return;
      }
      clear(main).appendChild(h("div", {}, pageHead("Something went wrong"), notice("bad", e.message || String(e))));
    }
  }

  function pageHead(title, sub, actions) {
    return h("div", { class: "page-head" }, h("div", {}, h("h1", { text: title }), sub ? h("p", { text: sub }) : null),
      actions ? h("div", { class: "row" }, actions) : null);
  }

  // ------------------------------------------------------------------ charts (inline SVG)

  const W = 640, H = 220, PAD = { l: 56, r: 12, t: 12, b: 28 };

  // The axis top: four gridline steps of 1, 2, 3 or 5 times a power of ten, so every label is a round number.
  function niceMax(v) {
    const step = Math.max(v, 4) / 4;
    const p = Math.pow(10, Math.floor(Math.log10(step)));
    for (const m of [1, 2, 3, 5, 10]) if (m * p >= step) return 4 * m * p;
    return 40 * p;
  }

  function bucketLabel(iso, seconds) {
    const d = new Date(iso);
    if (seconds >= 86400) return d.toLocaleDateString("en-US", { month: "short", day: "numeric" });
    return d.toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit" });
  }

  function axes(svg, max, fmt, labels) {
    const innerH = H - PAD.t - PAD.b;
    for (let i = 0; i <= 4; i++) {
      const y = PAD.t + innerH - (innerH * i) / 4;
      svg.appendChild(s("line", { class: "grid-line", x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }));
      svg.appendChild(s("text", { x: PAD.l - 6, y: y + 4, "text-anchor": "end" }, fmt((max * i) / 4)));
    }
    svg.appendChild(s("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b }));
    const step = Math.max(1, Math.ceil(labels.length / 8));
    const innerW = W - PAD.l - PAD.r;
    labels.forEach((label, i) => {
      if (i % step) return;
      const x = PAD.l + (innerW * (i + 0.5)) / labels.length;
      svg.appendChild(s("text", { x, y: H - 8, "text-anchor": "middle" }, label));
    });
  }

  function barChart(key, buckets, seconds) {
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Requests over time", "data-chart": key });
    const max = niceMax(Math.max(0, ...buckets.map((b) => b.requests)));
    axes(svg, max, (v) => fmtNum(Math.round(v)), buckets.map((b) => bucketLabel(b.start, seconds)));
    const innerW = W - PAD.l - PAD.r, innerH = H - PAD.t - PAD.b;
    const slot = innerW / Math.max(1, buckets.length), bw = Math.max(2, slot * 0.7);
    buckets.forEach((b, i) => {
      if (!b.requests) return;
      const x = PAD.l + slot * i + (slot - bw) / 2;
      const okH = (innerH * (b.requests - b.errors)) / max, errH = (innerH * b.errors) / max;
      const tip = `${bucketLabel(b.start, seconds)}: ${b.requests} requests, ${b.errors} errors`;
      if (okH > 0) svg.appendChild(s("rect", { class: "bar bar-ok", x, y: PAD.t + innerH - okH, width: bw, height: okH, fill: "#14b8a6", rx: 2 }, s("title", {}, tip)));
      if (errH > 0) svg.appendChild(s("rect", { class: "bar bar-error", x, y: PAD.t + innerH - okH - errH, width: bw, height: errH, fill: "#ef4444", rx: 2 }, s("title", {}, tip)));
    });
    return svg;
  }

  function lineChart(key, label, buckets, seconds, series, fixedMax, fmt) {
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, "data-chart": key });
    const values = series.flatMap((sr) => buckets.map((b) => b[sr.field]).filter((v) => v !== null && v !== undefined));
    const max = fixedMax || niceMax(Math.max(0, ...values));
    axes(svg, max, fmt, buckets.map((b) => bucketLabel(b.start, seconds)));
    const innerW = W - PAD.l - PAD.r, innerH = H - PAD.t - PAD.b;
    const slot = innerW / Math.max(1, buckets.length);
    for (const sr of series) {
      let d = "";
      const dots = [];
      buckets.forEach((b, i) => {
        const v = b[sr.field];
        if (v === null || v === undefined) return;
        const x = PAD.l + slot * (i + 0.5), y = PAD.t + innerH - (innerH * v) / max;
        d += `${d ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
        dots.push(s("circle", { class: "point", cx: x.toFixed(1), cy: y.toFixed(1), r: 3, fill: sr.color },
          s("title", {}, `${bucketLabel(b.start, seconds)}: ${sr.name} ${fmt(v)}`)));
      });
      if (d) svg.appendChild(s("path", { class: "line", d, fill: "none", stroke: sr.color, "stroke-width": 2, "stroke-linejoin": "round" }));
      dots.forEach((dot) => svg.appendChild(dot));
    }
    return svg;
  }

  function statusChart(codes) {
    const rowH = 26, width = W, height = Math.max(60, codes.length * rowH + 10);
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Status code distribution", "data-chart": "status" });
    const max = Math.max(1, ...codes.map((c) => c.count));
    const total = codes.reduce((a, c) => a + c.count, 0) || 1;
    const left = 60, right = 110, inner = width - left - right;
    codes.forEach((c, i) => {
      const y = 6 + i * rowH, w = Math.max(2, (inner * c.count) / max);
      const color = c.status < 300 ? "#14b8a6" : c.status < 400 ? "#64748b" : c.status === 429 ? "#f59e0b" : c.status < 500 ? "#f97316" : "#ef4444";
      svg.appendChild(s("text", { x: left - 10, y: y + 15, "text-anchor": "end" }, String(c.status)));
      svg.appendChild(s("rect", { class: "bar", x: left, y: y + 3, width: w, height: rowH - 10, fill: color, rx: 3 }, s("title", {}, `${c.status}: ${c.count}`)));
      svg.appendChild(s("text", { x: left + w + 8, y: y + 15 }, `${fmtNum(c.count)} · ${Math.round((100 * c.count) / total)}%`));
    });
    if (!codes.length) svg.appendChild(s("text", { x: width / 2, y: 34, "text-anchor": "middle" }, "No requests in this window"));
    return svg;
  }

  function legend(items) { return h("div", { class: "legend" }, items.map(([cls, text]) => h("span", {}, h("i", { class: cls }), text))); }

  // ------------------------------------------------------------------ Overview

  const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };

  // The go-live card leads with what the account can do (the status); the checklist is the detail. An account
  // approved with --force may still fail items: "0% / approved" read as a contradiction.
  function goLiveStat(g) {
    const passed = (g.checks || []).filter((c) => c.status === "passed").length, total = (g.checks || []).length;
    const checklist = `checklist ${passed} of ${total} passed (${g.score}%)`;
    const detail = g.status === "approved" ? `live payments enabled · ${checklist}` : checklist;
    return stat("Go-live", g.status.replace(/_/g, " "), detail, "golive");
  }

  PAGES.overview = async function () {
    const range = STORE.getItem("tahsil.range") || "24h";
    const to = new Date(), from = new Date(to.getTime() - RANGES[range] * 1000);
    const [o, golive] = await Promise.all([
      api("GET", "/v1/overview", { query: { from: from.toISOString(), to: to.toISOString() } }),
      api("GET", "/v1/go-live").catch(() => null),
    ]);
    const rangeSel = select(Object.keys(RANGES).map((k) => [k, { "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days" }[k]]), range,
      { id: "overview-range", onchange: (ev) => { STORE.setItem("tahsil.range", ev.target.value); route(); } });
    const r = o.requests, d = o.deliveries, lat = o.latency_ms, sig = o.signatures;
    const latest = d.latest_response;
    const seconds = o.window.bucket_seconds;
    const view = h("div", {},
      pageHead("Overview", `Your integration in ${state.mode} mode, from request counters and webhook deliveries.`,
        [rangeSel, h("span", { class: "muted small", text: `Updated ${fmtDate(o.updated_at, true)}` })]),
      o.limits.truncated ? notice("warn", `Busy window: webhook deliveries are counted from at most ${fmtNum(o.limits.max_delivery_rows)} delivery rows per view.`) : null,
      h("div", { class: "grid grid-4 stack" },
        stat("Total requests", fmtNum(r.total), `${fmtNum(r.succeeded)} succeeded`, "total"),
        stat("Success rate", fmtPct(r.success_rate), "status below 400", "success"),
        stat("Average latency", fmtMs(lat.avg), `p95 ${fmtMs(lat.p95)}`, "latency"),
        stat("Error rate", fmtPct(r.error_rate), `${fmtNum(r.client_errors)} 4xx · ${fmtNum(r.server_errors)} 5xx · ${fmtNum(r.rate_limited)} rate limited`, "errors"),
        stat("Signed requests", `${fmtNum(sig.passed)} passed`, `${fmtNum(sig.denied)} denied or failed`, "signatures"),
        stat("Event deliveries", `${fmtNum(d.delivered)} delivered`, `${fmtNum(d.attempts)} attempts · ${fmtNum(d.failed)} failed · ${fmtNum(d.retrying + d.pending)} in flight`, "deliveries"),
        stat("Latest webhook response", latest ? (latest.status_code ? String(latest.status_code) : (latest.error_class || "no answer")) : "—",
          latest ? `${fmtMs(latest.latency_ms)} · ${latest.event_type || ""} · ${fmtDate(latest.at)}` : "no deliveries in this window", "webhook"),
        golive ? goLiveStat(golive) : stat("Go-live", "—", "", "golive")),
      h("div", { class: "grid grid-2 stack" },
        card("Requests over time", [barChart("requests", o.buckets, seconds), legend([["c-ok", "succeeded"], ["c-bad", "errors (4xx, 5xx)"]])]),
        card("HTTP status codes", statusChart(o.status_codes)),
        card("Success rate", lineChart("success", "Success rate over time", o.buckets, seconds, [{ field: "success_rate", name: "success", color: "#14b8a6" }], 100, (v) => `${Math.round(v)}%`)),
        card("Latency", [lineChart("latency", "Latency over time", o.buckets, seconds,
          [{ field: "avg_latency_ms", name: "average", color: "#2563eb" }, { field: "p95_latency_ms", name: "p95", color: "#f59e0b" }], null, (v) => `${Math.round(v)} ms`),
        legend([["c-avg", "average"], ["c-p95", "95th percentile"]])])),
      h("div", { class: "grid grid-2 stack" },
        card("Request signing", sig.latest ? h("dl", { class: "kv" },
          h("dt", { text: "Latest request" }), h("dd", {}, h("code", { text: sig.latest.path })),
          h("dt", { text: "Status" }), h("dd", {}, badge(sig.latest.outcome, statusKind(sig.latest.outcome)), sig.latest.reason ? ` ${sig.latest.reason}` : ""),
          h("dt", { text: "Clock drift" }), h("dd", { text: sig.latest.drift_s === null || sig.latest.drift_s === undefined ? "—" : `${sig.latest.drift_s} s` }),
          h("dt", { text: "When" }), h("dd", { text: fmtDate(sig.latest.at) })) : h("p", { class: "muted", text: "No signed requests in this window. Keys can require signatures (API keys → Require signing)." })),
        card("Webhook endpoints", table([
          { label: "Endpoint", render: (e) => h("div", {}, h("code", { title: e.url, text: short(e.url, 40) }), h("div", { class: "small muted", text: e.endpoint_id })) },
          { label: "Delivered", num: true, nowrap: true, render: (e) => `${fmtNum(e.delivered)} of ${fmtNum(e.total)}` },
          { label: "Failed", num: true, render: (e) => fmtNum(e.failed) },
        ], d.endpoints, { empty: "No deliveries in this window." }))));
    return view;
  };

  // ------------------------------------------------------------------ API keys

  PAGES.keys = async function () {
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
  };

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
          await PAGES.keys().then((view) => { const main = $("main"); clear(main).appendChild(view); });
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
    const scopeBoxes = SCOPES.map((sc) => h("label", {}, h("input", { type: "checkbox", value: sc, checked: sc === "payments:create" || sc === "payments:read" }), sc));
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
        const view = await PAGES.keys();
        clear($("main")).appendChild(view);
        clear($("key-secret")).appendChild(secretBox(`Your new key: ${made.name}`, made.secret, null,
          made.signing_secret ? h("p", {}, "Signing secret (also shown once): ", h("code", { text: made.signing_secret })) : null));
      } catch (e) { showError(e, err); }
    });
    setTimeout(() => name.focus(), 0);
    return form;
  }

  // ------------------------------------------------------------------ Webhooks

  PAGES.webhooks = async function () {
    const data = await api("GET", "/v1/webhook-endpoints");
    const out = h("div", { id: "endpoint-secret" });
    const formHost = h("div", {});
    const list = data.webhook_endpoints;
    return h("div", {},
      pageHead("Webhooks", "Tahsil POSTs signed events (Standard Webhooks) to your endpoints and retries for up to a day.",
        h("button", { type: "button", class: "btn btn-primary", id: "add-endpoint", text: "Add endpoint", onclick: () => { clear(formHost).appendChild(endpointForm(out)); } })),
      out, formHost,
      list.length ? list.map((e) => endpointCard(e, out)) : card(null, h("div", { class: "empty", text: `No ${state.mode} endpoints yet. Add one to receive payment events.` })));
  };

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
        const view = await PAGES.webhooks();
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

  // ------------------------------------------------------------------ Events

  PAGES.events = async function (args) {
    const filters = JSON.parse(STORE.getItem("tahsil.eventFilters") || "{}");
    const modeSel = select([["test", "Test"], ["live", "Live"]], state.mode, { id: "events-mode", onchange: (ev) => setMode(ev.target.value) });
    const typeSel = select([["", "All types"], ...EVENT_TYPES.map((t) => [t, t]), ["webhook_endpoint.test", "webhook_endpoint.test"]], filters.type || "", { id: "events-type" });
    const statusSel = select([["", "Any status"], ["delivered", "Delivered"], ["pending", "Pending"], ["failed", "Failed"], ["no_endpoints", "No endpoints"]], filters.status || "", { id: "events-status" });
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
  };

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

  // ------------------------------------------------------------------ Logs

  const INTERVALS = [["900", "Last 15 minutes"], ["3600", "Last hour"], ["86400", "Last 24 hours"], ["604800", "Last 7 days"], ["2592000", "Last 30 days"], ["custom", "Custom…"]];

  PAGES.logs = async function () {
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
  };

  // ------------------------------------------------------------------ Credential guards (route #/health)

  PAGES.health = async function () {
    const g = await api("GET", "/v1/credential-guards");
    return h("div", {}, pageHead("Credential guards", "Rules every write of an API key or webhook secret passes, and an audit of older rows that break them."),
      h("div", { class: "grid grid-4 stack" }, stat("Healthy", g.healthy ? "Yes" : "No", null, "healthy"), stat("Installed", `${g.installed} / ${g.total}`),
        stat("Legacy issues", fmtNum(g.legacy_issues)), stat("Blocking rules", fmtNum(g.rules.filter((r) => r.enforcement === "block").length))),
      card("Credential database guards", table([
        { label: "Rule", render: (r) => h("div", {}, h("code", { text: r.name }), h("div", { class: "small muted", text: r.description })) },
        { label: "Table", render: (r) => r.table }, { label: "Type", render: (r) => r.type },
        { label: "Status", render: (r) => badge(r.status, statusKind(r.status)) },
        { label: "Enforcement", render: (r) => badge(r.enforcement, r.enforcement === "block" ? "info" : "warn") },
        { label: "Legacy rows", num: true, render: (r) => fmtNum(r.legacy_issues) },
      ], g.rules)),
      card("Credential guard legacy audit", table([
        { label: "Rule", render: (i) => h("code", { text: i.rule }) },
        { label: "Row", render: (i) => `${i.row.kind} ${i.row.id || ""} ${i.row.prefix ? i.row.prefix + "…" + i.row.last4 : ""}` },
        { label: "Problem", render: (i) => i.problem },
        { label: "Blocks future", render: (i) => i.enforcement === "block" ? "yes" : "no" },
      ], g.legacy, { empty: "Plaintext credential audit: 0 rows. Nothing to fix." })));
  };

  // ------------------------------------------------------------------ Go-live

  PAGES.golive = async function () {
    const g = await api("GET", "/v1/go-live");
    const note = h("textarea", { id: "review-note", maxlength: 500, placeholder: "Anything the reviewer should know (optional)" });
    const err = h("div", { hidden: true });
    const request = h("button", {
      type: "button", class: "btn btn-primary", id: "request-review", text: "Request review",
      disabled: g.status === "in_review" || g.status === "approved",
      onclick: async () => {
        request.disabled = true;
        try { const r = await api("POST", "/v1/go-live/reviews", { body: { note: note.value.trim() || null } }); toast(`Review ${r.id} requested`); route(); } catch (e) { showError(e, err); request.disabled = false; }
      },
    });
    const fill = h("div", { class: "score-fill" }); fill.style.width = `${g.score}%`;
    const latest = g.latest_review;
    return h("div", {}, pageHead("Go-live readiness", "Live payments need an approved review. The checklist is evaluated from your account's own records."),
      g.live_enabled ? notice("ok", "Live payments are enabled for this account.") : notice("warn", "Live keys cannot create payments until a review is approved (403 LIVE_MODE_NOT_ENABLED)."),
      h("div", { class: "grid grid-4 stack" }, stat("Status", g.status.replace(/_/g, " "), null, "golive-status"),
        h("div", { class: "stat", dataset: { stat: "score" } }, h("div", { class: "stat-label", text: "Score" }), h("div", { class: "score" }, h("div", { class: "stat-value", text: `${g.score}%` }), h("div", { class: "score-bar" }, fill))),
        stat("Blocking issues", g.blocking_issues.length ? String(g.blocking_issues.length) : "none"),
        stat("Latest review", latest ? latest.status : "none", latest ? fmtDate(latest.requested_at) : null, "latest-review")),
      card("Checklist", table([
        { label: "Item", render: (c) => h("strong", { text: c.name }) },
        { label: "Status", render: (c) => badge(c.status, statusKind(c.status)) },
        { label: "Mode", render: (c) => modeBadge(c.mode) },
        { label: "Evidence", render: (c) => c.evidence_id ? h("code", { class: "small", text: c.evidence_id }) : "—" },
        { label: "Detail", render: (c) => c.detail },
      ], g.checks, { class: "checklist", rowData: (c) => ({ item: c.id, status: c.status }) })),
      g.live_enabled ? null : card("Request a review", [
        g.blocking_issues.length ? notice("warn", `${g.blocking_issues.length} item(s) still fail; the reviewer will see them. Fix them first for a quicker approval.`) : notice("ok", "Every item passes: ready for approval."),
        h("div", { class: "form-grid" }, field("Note for the reviewer", note, "full")), err,
        h("div", { class: "form-actions" }, request, g.status === "in_review" ? h("span", { class: "muted", text: "A review is waiting for an operator." }) : null)]),
      card("Go-live reviews", table([
        { label: "Status", render: (r) => badge(r.status, statusKind(r.status)) },
        { label: "Readiness", render: (r) => r.readiness.replace(/_/g, " ") },
        { label: "Score", num: true, render: (r) => `${r.score}%` },
        { label: "Requested", nowrap: true, render: (r) => fmtDate(r.requested_at) },
        { label: "Decided", nowrap: true, render: (r) => r.decided_at ? fmtDate(r.decided_at) : "—" },
        { label: "Reason", render: (r) => r.reason || "—" },
      ], g.reviews, { empty: "No review requested yet.", class: "reviews" })));
  };

  // ------------------------------------------------------------------ API versions

  PAGES.versions = async function () {
    const v = await api("GET", "/v1/api-versions");
    const order = v.versions.map((x) => x.version);
    return h("div", {}, pageHead("API versions", `Your account is pinned to ${v.pinned}. A request can pick another with the Tahsil-Version header.`),
      v.upgrade_available ? notice("info", `${v.latest} is available.`) : null,
      card(null, table([
        { label: "Version", render: (x) => h("div", {}, h("code", { text: x.version }), h("div", { class: "small muted", text: x.summary || "" })) },
        { label: "Status", render: (x) => badge(x.status, statusKind(x.status)) },
        { label: "Released", render: (x) => x.released || "—" },
        { label: "Support", render: (x) => x.current ? badge("current", "ok") : "supported" },
        { label: "Changes", render: (x) => x.changes.map((c) => h("div", { class: "small" }, h("code", { text: c.name }), ` ${c.description}`)) },
        { label: "", render: (x) => !x.current && order.indexOf(x.version) < order.indexOf(v.pinned) ? armed(`Upgrade to ${x.version}`, "Confirm upgrade", async () => {
          await api("POST", "/v1/account/api-version", { body: { api_version: x.version } }); toast(`Pinned to ${x.version}`); route();
        }) : null },
      ], v.versions)));
  };

  // ------------------------------------------------------------------ Trace

  PAGES.trace = async function (args) {
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
        stat("Hand-off", t.complete ? "complete" : "in progress", `${t.handoff.filter((s2) => ["passed", "captured", "delivered", "fulfilled", "traceable"].includes(s2.status)).length} of ${t.handoff.length} steps`, "trace-complete"),
        stat("Payment intent", t.payment_intent ? t.payment_intent.id : "—", t.payment_intent ? "hosted checkout" : "API integration")),
      card("Integration hand-off", table([
        { label: "Step", render: (s2) => h("code", { text: s2.step }) },
        { label: "Actor", render: (s2) => s2.actor }, { label: "Action", render: (s2) => s2.action },
        { label: "Business question", render: (s2) => s2.question },
        { label: "Result", render: (s2) => h("strong", { text: s2.result }) },
        { label: "Evidence", render: (s2) => s2.evidence.map((e) => h("div", {}, h("code", { class: "small", text: e }))) },
        { label: "Status", render: (s2) => badge(s2.status.replace(/_/g, " "), statusKind(s2.status)) },
      ], t.handoff, { class: "handoff", rowData: (s2) => ({ step: s2.step, status: s2.status }) })),
      t.fulfillment ? null : card("Fulfillment", [p.status === "captured" || p.status === "partially_refunded" ? fform : h("p", { class: "muted", text: "Only a captured payment can be fulfilled." })]),
      card("Timeline", h("ol", { class: "timeline" }, t.timeline.map((e) => h("li", { dataset: { kind: e.kind } },
        h("div", { class: "small muted", text: fmtDate(e.at, true) }),
        h("div", {}, badge(e.kind.replace(/_/g, " "), e.kind === "request" ? "info" : e.kind === "webhook_attempt" ? statusKind(e.status) : "")),
        h("div", {}, h("div", {}, h("strong", { text: e.actor }), " · ", e.action, " → ", h("strong", { text: e.result })), ids(e.ids)))))),
      card("Ids for support", h("dl", { class: "kv" }, Object.entries(t.ids).map(([k, v]) => [h("dt", { text: k.replace(/_/g, " ") }), h("dd", {}, v.length ? v.map((x) => h("div", {}, h("code", { class: "small", text: x }))) : "—")]))));
  };

  // ------------------------------------------------------------------ Account

  PAGES.account = async function () {
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
    const currency = select(["USD", ...IBAN_CURRENCIES], po ? po.currency : "IQD", { id: "payout-currency" });
    const holder = h("input", { id: "payout-holder", value: po ? po.account_holder_name : (a.legal_name || "") });
    const bank = h("input", { id: "payout-bank", value: po && po.bank_name ? po.bank_name : "" });
    const iban = h("input", { id: "payout-iban", placeholder: "IQ98 NBIQ 8501 2345 6789 012", autocomplete: "off" });
    const routing = h("input", { id: "payout-routing", placeholder: "021000021", autocomplete: "off" });
    const account = h("input", { id: "payout-account", autocomplete: "off" });
    const kind = select(["checking", "savings"], "checking", { id: "payout-type" });
    const ibanRow = field("IBAN", iban, "full");
    const abaRows = h("div", { class: "form-grid full" }, field("ABA routing number", routing), field("Account number", account), field("Account type", kind));
    const sync = () => { const isIban = currency.value !== "USD"; ibanRow.hidden = !isIban; abaRows.hidden = isIban; };
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
      if (currency.value === "USD") Object.assign(dest, { routing_number: routing.value.trim(), account_number: account.value.trim(), account_type: kind.value });
      else dest.iban = iban.value.trim();
      try { await api("PATCH", "/v1/account", { body: { payout_destination: dest } }); toast("Payout destination saved: unverified until Tahsil checks it, payouts held 72 hours"); route(); } catch (e) { showError(e, oerr); }
    });
    return h("div", {}, pageHead("Account", `${a.name} · ${a.id}`), profile, payout, mfaCard(),
      card("Account", h("dl", { class: "kv" }, h("dt", { text: "Merchant id" }), h("dd", {}, h("code", { text: a.id })), h("dt", { text: "API version" }), h("dd", {}, h("code", { text: a.api_version })),
        h("dt", { text: "Live payments" }), h("dd", {}, a.live_enabled ? badge("enabled", "ok") : badge("not enabled", "warn"), " ", h("a", { href: "#/golive", text: "Go-live readiness" })))));
  };

  // Two-factor authentication (TOTP): the secret for an authenticator app, then its current code.
  function mfaCard() {
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

  // ------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", submitSignIn);
    $("signout").addEventListener("click", () => signOut("You have signed out.", true));
    for (const btn of document.querySelectorAll(".mode-btn")) btn.addEventListener("click", () => setMode(btn.dataset.mode));
    window.addEventListener("hashchange", route);
    loadSession();
    if (state.token) enter(); else showSignIn();
  });
})();
