"""The developer console in a real headless Chromium (Debian's package, driven by Playwright).

The local gateway serves the dashboard at /dashboard and creates a Cognito (moto) demo user;
each test signs in as that user, as merchant staff would. A small http.server on 127.0.0.1 is the
merchant's webhook endpoint; any request elsewhere is aborted. Screenshots of every page go to
artifacts/screenshots/dashboard-*.png (git-ignored; two of them are copied to docs/images/ for
the README). Without /usr/bin/chromium the tests skip, unless TAHSIL_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.support.browser import SCREENSHOTS, WAIT_MS
from tests.support.gateway import Gateway
from tests.support.local_gateway import fresh_card


class Hooks(BaseHTTPRequestHandler):
    """The merchant's webhook endpoint: answers 200 and remembers what it got."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Hooks.received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "15")
        self.end_headers()
        self.wfile.write(b'{"received":1}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hooks() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tahsil/webhooks"
    server.shutdown()
    server.server_close()


def shot(tab: Any, name: str) -> None:
    tab.evaluate("window.scrollTo(0, 0)")  # the top bar is sticky: a scrolled page would show it mid-picture
    tab.wait_for_timeout(150)  # let the last paint land
    tab.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.png"), full_page=True)


def sign_in(tab: Any, gw: Gateway) -> None:
    creds = gw.state["dashboard"]
    tab.goto(creds["url"])
    tab.locator("#signin-email").fill(creds["username"])
    tab.locator("#signin-password").fill(creds["password"])
    tab.locator("#signin-submit").click()
    tab.locator("main[data-ready='overview']").wait_for(timeout=WAIT_MS)


def open_page(tab: Any, name: str, *args: str) -> None:
    tab.evaluate("h => { location.hash = h }", "#/" + "/".join([name, *args]))
    tab.locator(f"main[data-ready='{name}']").wait_for(timeout=WAIT_MS)


def no_csp_violations(tab: Any) -> None:
    assert not [m for m in tab.console_messages if "Content Security Policy" in m or "Refused to" in m]


def until(check: Any, timeout_s: float = 20, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every_s)


def sale(gw: Gateway, amount: int = 4200, description: str = "Order #4200") -> dict[str, Any]:
    answer = gw.call("POST", "/v1/payments/sale", json_body={
        "amount": amount, "currency": "USD", "description": description,
        "card": {"number": fresh_card(), "cardholder_name": "Jane Doe", "exp_month": 12, "exp_year": 2030, "cvv": "123"}})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def logged(gw: Gateway, path: str) -> bool:
    rows = gw.call("GET", "/v1/request-logs", params={"path": path, "limit": 5}).json()["data"]["request_logs"]
    return bool(rows)


# ------------------------------------------------------------------ tests


def test_sign_in_as_the_demo_user_and_out(gateway: Gateway, page: Any) -> None:  # noqa: F811
    creds = gateway.state["dashboard"]
    response = page.goto(creds["url"])
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.locator("#signin-email").fill(creds["username"])
    page.locator("#signin-password").fill("Not-the-password-1")
    page.locator("#signin-submit").click()
    error = page.locator("#signin-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert error.inner_text() == "incorrect email or password"
    shot(page, "signin")

    page.locator("#signin-password").fill(creds["password"])
    page.locator("#signin-submit").click()
    page.locator("main[data-ready='overview']").wait_for(timeout=WAIT_MS)
    assert page.locator("#user-email").inner_text() == creds["username"]
    assert page.locator("#merchant-name").inner_text() == "Demo Store"
    assert page.locator("#mode-banner").get_attribute("data-mode") == "test"
    # The token lives in this tab's sessionStorage only; no cookie carries it.
    assert page.context.cookies() == []
    assert page.evaluate("JSON.parse(sessionStorage.getItem('tahsil.session')).token").startswith("eyJ")

    saved = page.evaluate("JSON.parse(sessionStorage.getItem('tahsil.session'))")
    assert saved["refresh"] and saved["role"] == "owner"

    page.locator("#signout").click()
    page.locator("#signin").wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("sessionStorage.getItem('tahsil.session')") is None
    # Signing out is Cognito's global sign-out: the tab's refresh token no longer renews anything.
    assert until(lambda: requests.post(f"{gateway.url}/dashboard/session", json={"refresh_token": saved["refresh"]},
                                       timeout=30).status_code == 401, timeout_s=10)
    no_csp_violations(page)


def test_an_expired_access_token_is_renewed_with_the_refresh_token(gateway: Gateway, page: Any) -> None:  # noqa: F811
    sign_in(page, gateway)
    saved = page.evaluate("JSON.parse(sessionStorage.getItem('tahsil.session'))")
    # As if the hour had passed: the stored access token is past its time (and no longer valid at all).
    page.evaluate("s => sessionStorage.setItem('tahsil.session', JSON.stringify(s))",
                  {**saved, "token": saved["token"][:-8] + "AAAAAAAA", "exp": 1})
    page.reload()
    page.locator("main[data-ready='overview']").wait_for(timeout=WAIT_MS)
    renewed = page.evaluate("JSON.parse(sessionStorage.getItem('tahsil.session'))")
    assert renewed["token"] != saved["token"] and renewed["refresh"] == saved["refresh"]
    assert renewed["exp"] > saved["exp"] - 5
    assert page.locator("#user-email").inner_text() == gateway.state["dashboard"]["username"]
    no_csp_violations(page)


def test_a_new_user_turns_on_totp_and_is_asked_for_a_code_at_sign_in(gateway: Gateway, page: Any) -> None:  # noqa: F811
    from tests.support.local_gateway import tahsil

    user = json.loads(tahsil(gateway, "users", "create", "--merchant-id", gateway.state["merchant_id"],
                             "--email", "mfa@demo.example", "--role", "developer").stdout)
    page.goto(gateway.state["dashboard"]["url"])
    page.locator("#signin-email").fill("mfa@demo.example")
    page.locator("#signin-password").fill(user["temporary_password"])
    page.locator("#signin-submit").click()
    page.locator("#signin-new-password").wait_for(state="visible", timeout=WAIT_MS)
    page.locator("#signin-new-password").fill("Mfa-demo-shop-2026")
    page.locator("#signin-submit").click()
    page.locator("main[data-ready='overview']").wait_for(timeout=WAIT_MS)

    open_page(page, "account")
    page.locator("#mfa-start").click()
    secret = page.locator("#mfa-setup code.secret-code")
    secret.wait_for(timeout=WAIT_MS)
    shown = page.locator("#mfa-setup").inner_text()
    assert secret.inner_text() and f"secret={secret.inner_text()}&issuer=Tahsil" in shown
    assert "otpauth://totp/Tahsil%3Amfa%40demo.example" in shown
    page.locator("#mfa-code").fill("123456")  # moto accepts any six digits
    page.locator("#mfa-form button[type=submit]").click()
    page.locator("#mfa-setup .notice-ok").wait_for(timeout=WAIT_MS)
    shot(page, "account-mfa")

    page.locator("#signout").click()
    page.locator("#signin-email").fill("mfa@demo.example")
    page.locator("#signin-password").fill("Mfa-demo-shop-2026")
    page.locator("#signin-submit").click()
    page.locator("#signin-mfa-code").wait_for(state="visible", timeout=WAIT_MS)
    page.locator("#signin-mfa-code").fill("654321")
    page.locator("#signin-submit").click()
    page.locator("main[data-ready='account']").wait_for(timeout=WAIT_MS)  # back on the page it left
    assert page.locator("#user-email").inner_text() == "mfa@demo.example"
    no_csp_violations(page)


def test_create_a_webhook_endpoint_and_see_its_secret_once(gateway: Gateway, page: Any, hooks: str) -> None:  # noqa: F811
    sign_in(page, gateway)
    open_page(page, "webhooks")
    page.locator("#add-endpoint").click()
    page.locator("#endpoint-url").fill(hooks)
    page.locator("#endpoint-description").fill("Order fulfilment")
    page.locator("#endpoint-form button[type=submit]").click()
    secret = page.locator("[data-secret='shown-once'] code")
    secret.wait_for(timeout=WAIT_MS)
    value = secret.inner_text()
    assert value.startswith("whsec_") and len(value) > 40
    endpoint = page.locator(f"section.endpoint:has(code:text-is('{hooks}'))")
    assert endpoint.count() == 1
    endpoint_id = endpoint.get_attribute("data-endpoint-id")
    listed = gateway.call("GET", f"/v1/webhook-endpoints/{endpoint_id}").json()["data"]
    assert listed["url"] == hooks and "secret" not in listed

    endpoint.locator("button[data-action='test']").click()
    page.locator("#toast").wait_for(state="visible", timeout=WAIT_MS)
    assert until(lambda: any(h.get("type") == "webhook_endpoint.test" for h in Hooks.received))
    shot(page, "webhooks-secret")

    # Shown once: after a reload the endpoint is there, its secret is not.
    page.reload()
    page.locator("main[data-ready='webhooks']").wait_for(timeout=WAIT_MS)
    assert page.locator(f"section.endpoint[data-endpoint-id='{endpoint_id}']").count() == 1
    assert page.locator("[data-secret='shown-once']").count() == 0
    assert value not in page.content()
    page.locator(f"section.endpoint[data-endpoint-id='{endpoint_id}'] table.deliveries td:has-text('delivered')").first.wait_for(
        timeout=WAIT_MS)
    shot(page, "webhooks")
    no_csp_violations(page)


def test_a_test_payment_made_through_the_api_shows_in_events_and_logs(gateway: Gateway, page: Any) -> None:  # noqa: F811
    paid = sale(gateway, 4242, "Order #4242 - from the API")
    sign_in(page, gateway)
    open_page(page, "events")
    page.locator("#events-type").select_option("payment.captured")
    page.locator("main[data-ready='events']").wait_for(timeout=WAIT_MS)
    row = page.locator(f"table.events tr:has(code:text-is('{paid['id']}'))")
    row.wait_for(timeout=WAIT_MS)
    row.click()
    payload = page.locator("#event-payload")
    payload.wait_for(timeout=WAIT_MS)
    assert paid["id"] in payload.inner_text() and '"amount": 4242' in payload.inner_text()
    shot(page, "events")

    assert until(lambda: logged(gateway, "/v1/payments/sale"))  # the request-log consumer runs every second or so
    open_page(page, "logs")
    page.locator("#logs-path").fill("/v1/payments/sale")
    page.locator("#logs-status").select_option("2xx")
    page.locator("#logs-filters button[type=submit]").click()
    page.locator("main[data-ready='logs']").wait_for(timeout=WAIT_MS)
    page.locator("table.logs tbody tr").first.wait_for(timeout=WAIT_MS)
    assert page.locator("table.logs tbody tr:has-text('POST /v1/payments/sale')").count() >= 1
    assert page.locator("table.logs tbody tr[data-status^='4']").count() == 0
    shot(page, "logs")
    no_csp_violations(page)


def test_overview_charts_render_with_data(gateway: Gateway, page: Any, hooks: str) -> None:  # noqa: F811
    made = gateway.call("POST", "/v1/webhook-endpoints", json_body={"url": hooks, "enabled_events": ["payment.captured"]})
    assert made.status_code == 201, made.text
    paid = [sale(gateway, amount)["id"] for amount in (1100, 2200, 3300)]
    assert until(lambda: set(paid) <= {h.get("data", {}).get("object", {}).get("id") for h in Hooks.received})
    assert gateway.call("GET", "/v1/payments/pay_NotARealPayment000000").status_code == 404
    assert until(lambda: logged(gateway, "/v1/payments/pay_NotARealPayment000000"))
    sign_in(page, gateway)
    page.locator("#overview-range").select_option("1h")
    page.locator("main[data-ready='overview']").wait_for(timeout=WAIT_MS)
    total = page.locator("[data-stat='total'] .stat-value").inner_text()
    assert int(total.replace(",", "")) >= 5
    assert page.locator("svg[data-chart='requests'] rect.bar").count() >= 1
    assert page.locator("svg[data-chart='requests'] rect.bar-error").count() >= 1
    assert page.locator("svg[data-chart='status'] rect.bar").count() >= 2  # 200 and 404 at least
    assert page.locator("svg[data-chart='success'] circle.point").count() >= 1
    assert page.locator("svg[data-chart='latency'] path.line").count() == 2  # average and p95
    assert page.locator("[data-stat='webhook'] .stat-value").inner_text() == "200"
    shot(page, "overview")
    no_csp_violations(page)


def mfa_owner(page: Any, gateway: Gateway, email: str) -> None:  # noqa: F811 - the page fixture, passed on
    """A new owner who turns TOTP on, then signs in with the code: a session that may use live powers for 15 minutes.
    The same steps as test_a_new_user_turns_on_totp_and_is_asked_for_a_code_at_sign_in, as an owner."""
    from tests.support.local_gateway import tahsil

    user = json.loads(tahsil(gateway, "users", "create", "--merchant-id", gateway.state["merchant_id"],
                             "--email", email, "--role", "owner").stdout)
    page.locator("#signout").click()
    page.goto(gateway.state["dashboard"]["url"])
    page.locator("#signin-email").fill(email)
    page.locator("#signin-password").fill(user["temporary_password"])
    page.locator("#signin-submit").click()
    page.locator("#signin-new-password").wait_for(state="visible", timeout=WAIT_MS)
    page.locator("#signin-new-password").fill("Owner-demo-shop-2026")
    page.locator("#signin-submit").click()
    page.locator("main[data-ready='overview']").wait_for(timeout=WAIT_MS)
    open_page(page, "account")
    page.locator("#mfa-start").click()
    page.locator("#mfa-setup code.secret-code").wait_for(timeout=WAIT_MS)
    page.locator("#mfa-code").fill("123456")  # moto accepts any six digits
    page.locator("#mfa-form button[type=submit]").click()
    page.locator("#mfa-setup .notice-ok").wait_for(timeout=WAIT_MS)
    page.locator("#signout").click()
    page.locator("#signin-email").fill(email)
    page.locator("#signin-password").fill("Owner-demo-shop-2026")
    page.locator("#signin-submit").click()
    page.locator("#signin-mfa-code").wait_for(state="visible", timeout=WAIT_MS)
    page.locator("#signin-mfa-code").fill("654321")
    page.locator("#signin-submit").click()
    page.locator("main[data-ready='account']").wait_for(timeout=WAIT_MS)  # back on the page it left
    assert page.locator("#user-email").inner_text() == email


def test_request_a_go_live_review(gateway: Gateway, page: Any) -> None:  # noqa: F811
    sign_in(page, gateway)
    open_page(page, "account")
    page.locator("#acct-legal-name").fill("Demo Store LLC")
    page.locator("#acct-mcc").fill("5734")
    page.locator("#acct-email").fill("support@demo-store.example")
    page.locator("#acct-phone").fill("+9647701234567")
    page.locator("#profile-form button[type=submit]").click()
    page.locator("#toast:has-text('Profile saved')").wait_for(timeout=WAIT_MS)
    page.locator("main[data-ready='account']").wait_for(timeout=WAIT_MS)
    page.locator("#payout-currency").select_option("IQD")
    page.locator("#payout-holder").fill("Demo Store LLC")
    page.locator("#payout-bank").fill("National Bank of Iraq")
    page.locator("#payout-iban").fill("IQ98 NBIQ 8501 2345 6789 012")
    page.locator("#payout-form button[type=submit]").click()
    # the payout account is a live power: the demo owner signed in with a password only is told to step up
    page.locator("#payout-form .notice-bad:has-text('two-factor')").wait_for(timeout=WAIT_MS)

    mfa_owner(page, gateway, "payouts@demo.example")  # an owner who signs in with the authenticator code
    open_page(page, "overview")
    open_page(page, "account")  # a fresh form (the page it came back to may still be rendering)
    page.locator("#payout-currency").select_option("IQD")
    page.locator("#payout-holder").fill("Demo Store LLC")
    page.locator("#payout-bank").fill("National Bank of Iraq")
    page.locator("#payout-iban").fill("IQ99 NBIQ 8501 2345 6789 012")  # a typo: the check digits catch it
    page.locator("#payout-form button[type=submit]").click()
    page.locator("#payout-form .notice-bad:has-text('check digits')").wait_for(timeout=WAIT_MS)
    page.locator("#payout-iban").fill("IQ98 NBIQ 8501 2345 6789 012")
    page.locator("#payout-form button[type=submit]").click()
    page.locator("#toast:has-text('Payout destination')").wait_for(timeout=WAIT_MS)
    page.locator("#payout-form:has-text('…9012')").wait_for(timeout=WAIT_MS)
    shot(page, "account")
    from tests.support.local_gateway import tahsil

    tahsil(gateway, "merchants", "verify-payout", gateway.state["merchant_id"], "--reason", "bank letter checked")

    open_page(page, "golive")
    checklist = page.locator("table.checklist")
    assert checklist.locator("tr[data-item='business_profile']").get_attribute("data-status") == "passed"
    assert checklist.locator("tr[data-item='payout_destination']").get_attribute("data-status") == "passed"
    assert checklist.locator("tr[data-item='webhook_delivery']").get_attribute("data-status") == "failed"
    page.locator("#review-note").fill("Ready for the autumn sale.")
    page.locator("#request-review").click()
    page.locator("table.reviews td:has-text('requested')").wait_for(timeout=WAIT_MS)
    page.locator("main[data-ready='golive']").wait_for(timeout=WAIT_MS)
    assert page.locator("[data-stat='golive-status'] .stat-value").inner_text() == "in review"
    assert page.locator("#request-review").is_disabled()
    shot(page, "golive")
    review = gateway.call("GET", "/v1/go-live").json()["data"]["latest_review"]
    assert review["status"] == "requested" and review["note"] == "Ready for the autumn sale."
    no_csp_violations(page)


def test_keys_trace_and_the_other_pages_in_both_modes(gateway: Gateway, page: Any) -> None:  # noqa: F811
    paid = sale(gateway, 12500, "School fee SCH-2026-00041")
    sign_in(page, gateway)

    open_page(page, "keys")
    page.locator("#new-key").click()
    page.locator("#key-name").fill("Checkout server")
    page.locator("#key-allowlist").fill("185.62.75.24/32")
    page.locator("#key-form button[type=submit]").click()
    created = page.locator("#key-secret code.secret-code")
    created.wait_for(timeout=WAIT_MS)
    assert created.inner_text().startswith("sk_test_")
    row = page.locator("table tr:has-text('Checkout server')")
    assert row.locator("code:has-text('185.62.75.24/32')").count() == 1
    first_secret = created.inner_text()
    shot(page, "keys")
    row.locator("button:has-text('Roll…')").click()
    row.locator("select.roll-grace").select_option("3600")
    row.locator("button:has-text('Roll key')").click()
    page.locator("#key-secret:has-text('keeps working until')").wait_for(timeout=WAIT_MS)
    rolled = page.locator("#key-secret code.secret-code").inner_text()
    assert rolled.startswith("sk_test_") and rolled != first_secret
    old = gateway.call("GET", "/v1/payments", key=first_secret)
    # Still a valid key through its grace hour (a rolled-out key would be a 401); this address is not on its allowlist.
    assert old.status_code == 403 and old.json()["error"]["code"] == "IP_NOT_ALLOWED"

    assert until(lambda: logged(gateway, "/v1/payments/sale"))
    gateway.call("POST", f"/v1/payments/{paid['id']}/fulfillment", json_body={"reference": "SCH-2026-00041"})
    open_page(page, "trace", paid["id"])
    handoff = page.locator("table.handoff")
    assert handoff.locator("tr[data-step='capture']").get_attribute("data-status") == "captured"
    assert handoff.locator("tr[data-step='fulfillment']").get_attribute("data-status") == "fulfilled"
    assert handoff.locator("tr[data-step='webhook']").get_attribute("data-status") in ("delivered", "pending", "no_endpoint")
    assert page.locator(".timeline li[data-kind='request']").count() >= 1
    shot(page, "trace")

    for name in ("health", "versions"):
        open_page(page, name)
        shot(page, name)
    assert page.locator("td:has-text('2026-06-14.basra')").count() >= 1

    page.locator("#mode-live").click()
    page.locator("main[data-ready='versions']").wait_for(timeout=WAIT_MS)
    assert page.locator("#mode-banner").get_attribute("data-mode") == "live"
    assert "go-live review" in page.locator("#mode-banner").inner_text()
    open_page(page, "keys")
    modes = page.locator("table tbody tr .badge-live")
    assert modes.count() >= 1 and page.locator("table tbody tr .badge-test").count() == 0
    shot(page, "live-keys")
    page.locator("#mode-test").click()
    page.locator("main[data-ready='keys']").wait_for(timeout=WAIT_MS)
    no_csp_violations(page)


# ------------------------------------------------------------------ layout: nothing wider than the window

LAYOUT_PAGES = ("overview", "keys", "webhooks", "events", "logs", "trace", "health", "golive", "versions", "account")

# What overflows: the page itself, and any table whose last column reaches past what its box shows.
OVERFLOW_PROBE = """() => {
  const out = {page: document.documentElement.scrollWidth, window: window.innerWidth, tables: [], wide: []};
  for (const table of document.querySelectorAll("main table")) {
    const wrap = table.closest(".table-wrap") || table.parentElement;
    const box = wrap.getBoundingClientRect();
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(wrap).overflowX);
    const head = table.querySelector("tr");
    const last = head && head.lastElementChild ? head.lastElementChild.getBoundingClientRect() : box;
    out.tables.push({name: table.className || table.id || "table", fits: last.right <= box.right + 1,
                     scrolls, right: Math.round(last.right), box: Math.round(box.right)});
  }
  for (const el of document.querySelectorAll("main *")) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > window.innerWidth + 1 && !el.closest(".table-wrap")) {
      out.wide.push((el.tagName + "." + el.className + " " + (el.textContent || "").slice(0, 40)).trim());
    }
  }
  return out;
}"""


def paid_through_checkout(gw: Gateway) -> dict[str, Any]:
    """A payment made by the hosted checkout's own calls: its trace shows the payment intent's long id."""
    made = gw.call("POST", "/v1/payment-intents", json_body={
        "amount": 4999, "currency": "USD", "description": "Order #4999 - a long description to wrap " * 2,
        "success_url": f"{gw.url}/demo/order/success?session_id={{CHECKOUT_SESSION_ID}}"}).json()["data"]
    import requests

    paid = requests.post(f"{gw.url}/public/payment-intents/{made['id']}/confirm", headers={"X-Client-Secret": made["client_secret"]},
                         json={"card": {"number": fresh_card(), "cardholder_name": "Jane Doe", "exp_month": 12,
                                        "exp_year": 2030, "cvv": "123"}, "customer_email": "jane@example.com"}, timeout=30)
    assert paid.status_code == 200, paid.text
    return paid.json()["data"]


@pytest.mark.parametrize("width", [1280, 390])
def test_no_page_is_wider_than_the_window_and_no_table_clips_its_last_column(
        gateway: Gateway, browser: Any, width: int) -> None:  # noqa: F811
    paid = paid_through_checkout(gateway)
    sale(gateway, 7700, "Order #7700")
    assert until(lambda: logged(gateway, "/public/payment-intents/{id}/confirm") or logged(gateway, "/v1/payments/sale"))
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US", service_workers="block")
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(gateway.url) else route.abort())
    try:
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        tab.console_messages = []  # type: ignore[attr-defined]
        sign_in(tab, gateway)
        problems = []
        for name in LAYOUT_PAGES:
            open_page(tab, name, *([paid["payment_id"]] if name == "trace" else []))
            tab.wait_for_timeout(200)
            probe = tab.evaluate(OVERFLOW_PROBE)
            if probe["page"] > probe["window"]:
                problems.append(f"{name}: page is {probe['page']} px in a {probe['window']} px window: {probe['wide'][:4]}")
            for table in probe["tables"]:
                # Wide screens show every column; a phone may scroll a table sideways, inside its own box.
                if not table["fits"] and (width >= 1280 or not table["scrolls"]):
                    problems.append(f"{name}: table {table['name']} ends at {table['right']} px, its box at {table['box']} px")
            if name in ("trace", "logs"):
                tab.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}-{width}px.png"), full_page=True)
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def served_constants(gw: Gateway) -> dict[str, Any]:
    """constants.js as the gateway serves it (generated from the backend), each export parsed back."""
    text = requests.get(f"{gw.url}/dashboard/assets/constants.js", timeout=30).text
    found = {}
    for line in text.splitlines():
        if line.startswith("export const "):
            name, _, rest = line[len("export const "):].partition(" = Object.freeze(")
            found[name] = json.loads(rest.removesuffix(");"))
    return found


def test_the_forms_offer_exactly_what_the_backend_defines(gateway: Gateway, page: Any) -> None:  # noqa: F811
    served = served_constants(gateway)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, gateway)

    open_page(page, "events")
    options = page.locator("#events-type option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["", *served["EVENT_TYPES"], served["TEST_EVENT"]]
    statuses = page.locator("#events-status option").evaluate_all("os => os.map(o => o.value)")
    assert statuses == ["", *served["STATUSES"]["event_delivery"]] and "no_endpoints" in statuses

    open_page(page, "keys")
    page.locator("#new-key").click()
    scopes = page.locator("#key-form .checks input").evaluate_all("bs => bs.map(b => [b.value, b.checked])")
    assert [s for s, _ in scopes] == list(served["SCOPES"])
    assert {s for s, checked in scopes if checked} == {"payments:create", "payments:read"}

    open_page(page, "webhooks")
    page.locator("#add-endpoint").click()
    events = page.locator("#endpoint-form .checks input").evaluate_all("bs => bs.map(b => b.value)")
    assert events == served["EVENT_TYPES"]

    open_page(page, "account")
    currencies = page.locator("#payout-currency option").evaluate_all("os => os.map(o => o.value)")
    assert currencies == list(served["PAYOUT_SCHEMES"])
    page.locator("#payout-currency").select_option("USD")
    assert page.locator("#payout-routing").is_visible() and not page.locator("#payout-iban").is_visible()
    page.locator("#payout-currency").select_option("KWD")
    assert page.locator("#payout-iban").is_visible() and not page.locator("#payout-routing").is_visible()

    # Money is shown with the currency's own decimals (IQD has three), from the served exponents.
    assert served["MINOR_UNITS"]["IQD"] == 3
    shown = page.evaluate("async () => (await import('./dashboard/assets/format.js')).money(1234567, 'IQD')")
    assert shown == "1,234.567 IQD"
    assert not errors, errors
    no_csp_violations(page)
