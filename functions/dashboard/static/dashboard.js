/* Tahsil dashboard: a small single-page app over the /v1 API, as native ES modules (no bundler, no library).
 *
 * This entry module wires the sign-in form, the mode switch and the hash router to the pages, one
 * module each (page-*.js). The shared core: api.js (calls, session renewal), state.js (the tab's
 * session), signin.js, router.js, dom.js and ui.js (building the DOM with createElement and
 * textContent only, never HTML strings built from data), format.js, charts.js (inline SVG), mfa.js.
 * constants.js is not in this folder: the dashboard function generates it from the backend's own
 * definitions (event types, currency exponents, scopes, statuses; tahsil/console/constants.py).
 * Everything comes from this origin, so the CSP stays `script-src 'self'; connect-src 'self'`.
 */

import { endSession, onSessionEnd } from "./api.js";
import { $ } from "./dom.js";
import { account } from "./page-account.js";
import { events } from "./page-events.js";
import { golive } from "./page-golive.js";
import { health } from "./page-health.js";
import { keys } from "./page-keys.js";
import { logs } from "./page-logs.js";
import { overview } from "./page-overview.js";
import { trace } from "./page-trace.js";
import { versions } from "./page-versions.js";
import { webhooks } from "./page-webhooks.js";
import { route, setMode, setPages } from "./router.js";
import { enter, showSignIn, submitSignIn } from "./signin.js";
import { loadSession, state } from "./state.js";

// #/<name> -> the page; the sidebar's links in index.html name the same pages.
setPages({ overview, keys, webhooks, events, logs, trace, health, golive, versions, account });
onSessionEnd(showSignIn);

// A module runs once the document is parsed (modules are deferred).
$("signin-form").addEventListener("submit", submitSignIn);
$("signout").addEventListener("click", () => endSession("You have signed out.", true));
for (const btn of document.querySelectorAll(".mode-btn")) btn.addEventListener("click", () => setMode(btn.dataset.mode));
window.addEventListener("hashchange", route);
loadSession();
if (state.token) enter(); else showSignIn();
