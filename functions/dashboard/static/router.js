/* The hash router (#/page/arg...) and the test/live mode switch.
 *
 * dashboard.js hands the page table to setPages; a page is an async function of the hash's further
 * segments that answers the view to show. `main[data-ready=<page>]` marks a finished render (the
 * browser tests wait for it). A page's action that changes data calls route() to render it afresh.
 */

import { ApiError } from "./api.js";
import { $, clear, h } from "./dom.js";
import { mfaCard } from "./mfa.js";
import { STORE, state } from "./state.js";
import { notice, pageHead } from "./ui.js";

export function setModeUi() {
  for (const btn of document.querySelectorAll(".mode-btn")) btn.setAttribute("aria-pressed", String(btn.dataset.mode === state.mode));
  const banner = $("mode-banner");
  banner.className = `mode-banner ${state.mode}`;
  banner.dataset.mode = state.mode;
  if (state.mode === "test") banner.textContent = "Test mode: you are looking at test data. Test payments move no money.";
  else if (state.account && !state.account.live_enabled) banner.textContent = "Live mode: live payments are disabled until your go-live review is approved.";
  else banner.textContent = "Live mode: real customers, real money.";
}

export function setMode(mode) {
  if (mode === state.mode) return;
  state.mode = mode; STORE.setItem("tahsil.mode", mode);
  setModeUi(); route();
}

let PAGES = {};
export function setPages(pages) { PAGES = pages; }
let renderSerial = 0;

export async function route() {
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
