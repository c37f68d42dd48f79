"""The hosted checkout page in a real headless Chromium (Debian's package, driven by Playwright).

Everything stays on 127.0.0.1: the local gateway serves the page, a tiny http.server plays the
merchant's success and cancel pages, and any request elsewhere is aborted. Screenshots go to
artifacts/screenshots/ (git-ignored). Without /usr/bin/chromium the tests skip, unless
TAHSIL_REQUIRE_BROWSER=1 (CI), where they fail instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.browser import LOCAL_HOSTS, SCREENSHOTS, WAIT_MS
from tests.support.gateway import Gateway
from tests.support.intents import expire

# ------------------------------------------------------------------ fixtures


class Merchant(BaseHTTPRequestHandler):
    """The merchant's own pages: /success and /cancel, on a free loopback port."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = f"<!doctype html><title>Shop</title><h1>Shop: {urlsplit(self.path).path}</h1>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Merchant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()






def new_intent(gw: Gateway, shop: str, **over: Any) -> dict[str, Any]:
    body = {"amount": 9999, "currency": "USD", "success_url": f"{shop}/success?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{shop}/cancel", "description": "Order #12345 - Premium Plan",
            "customer_email": "john@example.com", **over}
    answer = gw.call("POST", "/v1/payment-intents", json_body=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def fill_card(page: Any, number: str, *, expiry: str = "1230", cvc: str = "123", name: str = "John Doe") -> None:
    page.locator("#card-number").fill("")
    page.locator("#card-number").press_sequentially(number, delay=5)  # typed, so the grouping runs as a person sees it
    page.locator("#card-expiry").fill("")
    page.locator("#card-expiry").press_sequentially(expiry, delay=5)
    page.locator("#card-cvc").fill(cvc)
    page.locator("#card-name").fill(name)


def screenshot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


# ------------------------------------------------------------------ tests


def test_4242_lands_on_the_success_url_with_the_intent_id(gateway: Gateway, shop: str, page: Any) -> None:
    intent = new_intent(gateway, shop)
    response = page.goto(intent["checkout_url"], wait_until="load")
    assert response is not None and response.status == 200
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
    assert page.locator("#merchant-name").inner_text() == "Demo Store"
    assert page.locator("#amount").inner_text() == "$99.99"
    assert page.locator(".description").inner_text() == "Order #12345 - Premium Plan"
    assert page.locator("#email").input_value() == "john@example.com"
    screenshot(page, "checkout-page.png")

    fill_card(page, "4242424242424242")
    assert page.locator("#card-number").input_value() == "4242 4242 4242 4242"
    assert page.locator("#card-brand").inner_text() == "Visa"
    assert page.locator("#card-expiry").input_value() == "12 / 30"
    screenshot(page, "checkout-filled.png")
    page.locator("#pay-button").click()
    page.wait_for_url(f"{shop}/success**", timeout=WAIT_MS)

    landed = parse_qs(urlsplit(page.url).query)
    assert landed["payment_intent"] == [intent["id"]] and landed["session_id"] == [intent["id"]]
    shown = gateway.call("GET", f"/v1/payment-intents/{intent['id']}").json()["data"]
    assert shown["status"] == "succeeded" and shown["payment_status"] == "captured"
    assert not [m for m in page.console_messages if "Content Security Policy" in m]

    # Opening the link again shows that it is paid, not a form.
    page.goto(intent["checkout_url"])
    assert page.locator(".notice[data-status='succeeded']").is_visible()
    assert page.locator("#checkout-form").count() == 0


def test_a_0002_card_shows_the_decline_and_the_attempts_left(gateway: Gateway, shop: str, page: Any) -> None:
    intent = new_intent(gateway, shop)
    page.goto(intent["checkout_url"])
    fill_card(page, "4000000000000002")
    page.locator("#pay-button").click()
    alert = page.locator("#form-error")
    alert.wait_for(state="visible", timeout=WAIT_MS)
    text = alert.inner_text()
    assert "declined" in text and "do not honor" in text and "4 attempts left" in text
    assert alert.get_attribute("role") == "alert"
    assert page.locator("#pay-button").is_enabled()
    screenshot(page, "checkout-decline.png")


def test_five_declines_lock_the_intent(gateway: Gateway, shop: str, page: Any) -> None:
    intent = new_intent(gateway, shop)
    page.goto(intent["checkout_url"])
    alert = page.locator("#form-error")
    for left in (4, 3, 2, 1):
        fill_card(page, "4000000000000002")
        page.locator("#pay-button").click()
        page.wait_for_function(
            "n => document.getElementById('form-error').textContent.includes(n + (n === 1 ? ' attempt ' : ' attempts ') + 'left')",
            arg=left, timeout=WAIT_MS)
    fill_card(page, "4000000000000002")
    page.locator("#pay-button").click()
    page.wait_for_function("() => document.getElementById('checkout-form').hidden", timeout=WAIT_MS)
    assert "locked" in alert.inner_text() and alert.inner_text().count("locked") == 1
    assert page.locator("#pay-title").inner_text() == "Payment locked"
    screenshot(page, "checkout-locked.png")

    page.reload()
    assert page.locator(".notice[data-status='locked']").is_visible()
    assert page.locator("h1").inner_text() == "This payment is locked"
    answer = requests.post(f"{gateway.url}/public/payment-intents/{intent['id']}/confirm",
                           headers={"X-Client-Secret": intent["client_secret"]}, timeout=30,
                           json={"card": {"number": "5555555555554444", "exp_month": 12, "exp_year": 2030, "cvv": "123"}})
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "MAX_ATTEMPTS_REACHED"


def test_a_description_holding_a_script_renders_as_text(gateway: Gateway, shop: str, page: Any) -> None:
    evil = "<script>alert('pwned')</script><img src=x onerror=\"alert(1)\"> & \"quotes\""
    intent = new_intent(gateway, shop, description=evil)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(intent["checkout_url"], wait_until="load")
    assert page.locator(".description").inner_text() == evil
    assert page.locator(".description img, .description script").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []


def test_an_expired_intent_shows_its_page(gateway: Gateway, shop: str, page: Any) -> None:
    intent = new_intent(gateway, shop)
    expire(gateway, intent["id"])
    page.goto(intent["checkout_url"])
    assert page.locator("h1").inner_text() == "This payment link has expired"
    assert page.locator("#checkout-form").count() == 0
    assert page.locator("#return-link").get_attribute("href") == f"{shop}/cancel"
    screenshot(page, "checkout-expired.png")


def test_the_page_checks_luhn_and_expiry_with_accessible_messages(gateway: Gateway, shop: str, page: Any) -> None:
    intent = new_intent(gateway, shop)
    page.goto(intent["checkout_url"])
    confirms: list[str] = []
    page.on("request", lambda req: confirms.append(req.url) if "/confirm" in req.url else None)
    fill_card(page, "4242424242424241", expiry="0120", cvc="12")
    page.locator("#email").fill("not-an-email")
    page.locator("#pay-button").click()
    number = page.locator("#card-number")
    assert number.get_attribute("aria-invalid") == "true"
    assert "invalid" in page.locator("#card-number-error").inner_text()
    assert "card-number-error" in (number.get_attribute("aria-describedby") or "")
    assert page.locator("#card-expiry-error").inner_text() == "Your card has expired."
    assert "3 digits" in page.locator("#card-cvc-error").inner_text()
    assert "valid email" in page.locator("#email-error").inner_text()
    assert page.locator("#card-number-error").get_attribute("aria-live") == "polite"
    assert page.evaluate("document.activeElement.id") == "email"  # the first field to fix
    assert confirms == []  # nothing was sent
    screenshot(page, "checkout-validation.png")

    # Amex groups 4-6-5 and shows its brand.
    page.locator("#card-number").fill("")
    page.locator("#card-number").press_sequentially("378282246310005", delay=5)
    assert page.locator("#card-number").input_value() == "3782 822463 10005"
    assert page.locator("#card-brand").inner_text() == "Amex"
    assert page.locator("#card-brand-name").inner_text() == "American Express"  # what a screen reader hears


def test_cancel_goes_to_the_cancel_url(gateway: Gateway, shop: str, page: Any) -> None:
    intent = new_intent(gateway, shop)
    page.goto(intent["checkout_url"])
    page.locator("#cancel-link").click()
    page.wait_for_url(f"{shop}/cancel", timeout=WAIT_MS)


def test_the_page_fits_a_375px_phone(gateway: Gateway, shop: str, browser: Any) -> None:
    intent = new_intent(gateway, shop, description="Annual plan for a small team, billed once, with a long description "
                                                   "that wraps on a narrow screen")
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    context.route("**/*", lambda route: route.continue_() if urlsplit(route.request.url).hostname in LOCAL_HOSTS
                  else route.abort())
    try:
        phone = context.new_page()
        phone.set_default_timeout(WAIT_MS)
        phone.goto(intent["checkout_url"])
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        box = phone.locator("#pay-button").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
        phone.screenshot(path=str(SCREENSHOTS / "checkout-page-375.png"), full_page=True)
    finally:
        context.close()


def test_a_link_without_its_secret_shows_no_form(gateway: Gateway, shop: str, page: Any) -> None:
    intent = new_intent(gateway, shop)
    response = page.goto(f"{gateway.url}/checkout/{intent['id']}?client_secret=wrong")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "This payment link is not valid"
    assert page.locator("#checkout-form").count() == 0


def test_a_3ds_challenge_card_goes_to_the_bank_and_lands_on_the_success_url(gateway: Gateway, shop: str,
                                                                           page: Any) -> None:
    intent = new_intent(gateway, shop)
    page.goto(intent["checkout_url"])
    fill_card(page, "4000002760003184")
    page.locator("#pay-button").click()
    page.wait_for_url("**/checkout/authenticate/**", timeout=WAIT_MS)
    assert page.locator("h1").inner_text() == "3-D Secure test authentication"
    waiting = gateway.call("GET", f"/v1/payment-intents/{intent['id']}").json()["data"]
    assert waiting["status"] == "requires_action" and waiting["payment_status"] == "requires_action"
    screenshot(page, "checkout-3ds-challenge.png")
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url(f"{shop}/success**", timeout=WAIT_MS)
    assert parse_qs(urlsplit(page.url).query)["session_id"] == [intent["id"]]
    paid = gateway.call("GET", f"/v1/payment-intents/{intent['id']}").json()["data"]
    assert paid["status"] == "succeeded" and paid["payment_status"] == "captured"
    assert not [m for m in page.console_messages if "Content Security Policy" in m]


def test_a_failed_3ds_challenge_comes_back_to_the_page_and_another_card_pays(gateway: Gateway, shop: str,
                                                                            page: Any) -> None:
    intent = new_intent(gateway, shop)
    page.goto(intent["checkout_url"])
    fill_card(page, "4000002760003184")
    page.locator("#pay-button").click()
    page.wait_for_url("**/checkout/authenticate/**", timeout=WAIT_MS)
    page.get_by_role("button", name="Fail").click()
    page.wait_for_url(f"**/checkout/{intent['id']}?client_secret=*", timeout=WAIT_MS)
    alert = page.locator("#form-error")
    assert alert.is_visible() and "authentication failed" in alert.inner_text()
    assert "4 attempts left" in alert.inner_text()
    screenshot(page, "checkout-3ds-failed.png")
    fill_card(page, "4242424242424242")
    page.locator("#pay-button").click()
    page.wait_for_url(f"{shop}/success**", timeout=WAIT_MS)
    paid = gateway.call("GET", f"/v1/payment-intents/{intent['id']}").json()["data"]
    assert paid["status"] == "succeeded" and paid["attempts"] == 1
