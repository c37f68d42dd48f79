"""Payment intents through the local gateway over HTTP: every status code, and the double-click race."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.support.gateway import Gateway
from tests.support.intents import expire

TIMEOUT = 30


def luhn_card(prefix: str = "4", length: int = 16) -> str:
    """A fresh Luhn-valid Visa number: the simulated issuer approves it, and its fraud velocity starts at zero."""
    body = prefix + "".join(random.choice("0123456789") for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return body + str((10 - total % 10) % 10)


def card(number: str | None = None) -> dict[str, Any]:
    return {"number": number or luhn_card(), "cardholder_name": "Jane Doe", "exp_month": 12, "exp_year": 2030, "cvv": "123"}


def create_intent(gw: Gateway, key: str | None = None, **over: Any) -> requests.Response:
    body = {"amount": 2500, "currency": "EUR", "success_url": "http://127.0.0.1:9/success?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://localhost:9/cancel", "description": "Two tickets", "customer_email": "jane@example.com",
            **over}
    return gw.call("POST", "/v1/payment-intents", key=key, json_body=body)


def confirm(gw: Gateway, intent_id: str, secret: str | None, number: str | None = None) -> requests.Response:
    headers = {"X-Client-Secret": secret} if secret is not None else {}
    return requests.post(f"{gw.url}/public/payment-intents/{intent_id}/confirm", headers=headers,
                         json={"card": card(number)}, timeout=TIMEOUT)






def fresh_key(gw: Gateway) -> str:
    env = {**os.environ, "TAHSIL_STATE_DIR": str(gw.state_dir)}
    out = subprocess.run([sys.executable, "-m", "tahsil_local.cli", "merchants", "create", "--name", "Intent Race Store"],
                         env=env, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)["keys"]["test"]["secret"]


def fire(n: int, call: Any) -> list[requests.Response]:
    barrier = threading.Barrier(n)

    def one(i: int) -> requests.Response:
        barrier.wait(timeout=30)
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def all_payments(gw: Gateway, key: str) -> list[dict[str, Any]]:
    found, cursor = [], None
    while True:
        page = gw.call("GET", "/v1/payments?limit=100" + (f"&starting_after={cursor}" if cursor else ""), key=key).json()["data"]
        found += page["payments"]
        if not page["has_more"]:
            return found
        cursor = page["next_starting_after"]


# ------------------------------------------------------------------ the merchant's side


def test_create_201_then_get_list_and_the_checkout_url_on_this_gateway(gateway: Gateway) -> None:
    answer = create_intent(gateway)
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    assert data["status"] == "created" and data["id"].startswith("pi_")
    url = urlsplit(data["checkout_url"])
    assert f"{url.scheme}://{url.netloc}" == gateway.url and url.path == f"/checkout/{data['id']}"
    assert parse_qs(url.query)["client_secret"] == [data["client_secret"]]

    got = gateway.call("GET", f"/v1/payment-intents/{data['id']}")
    assert got.status_code == 200 and got.json()["data"]["id"] == data["id"]
    assert "client_secret" not in got.json()["data"]
    listed = gateway.call("GET", "/v1/payment-intents?limit=5").json()["data"]
    assert data["id"] in [i["id"] for i in listed["payment_intents"]]

    page = requests.get(data["checkout_url"], timeout=TIMEOUT)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    script = requests.get(f"{gateway.url}/checkout/assets/checkout.js", timeout=TIMEOUT)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]


def test_400_for_a_bad_url_or_field_names_it(gateway: Gateway) -> None:
    for over, param in [({"success_url": "http://shop.example/ok"}, "success_url"),
                        ({"cancel_url": "javascript:alert(1)"}, "cancel_url"),
                        ({"amount": -5}, "amount"), ({"capture_method": "sometimes"}, "capture_method")]:
        answer = create_intent(gateway, **over)
        assert answer.status_code == 400, (over, answer.text)
        assert answer.json()["error"]["param"] == param


def test_401_without_a_key_and_404_for_an_unknown_intent(gateway: Gateway) -> None:
    assert requests.post(f"{gateway.url}/v1/payment-intents", json={}, timeout=TIMEOUT).status_code == 401
    missing = "pi_" + "n" * 20
    assert gateway.call("GET", f"/v1/payment-intents/{missing}").status_code == 404
    assert requests.get(f"{gateway.url}/public/payment-intents/{missing}", timeout=TIMEOUT).status_code == 404
    assert confirm(gateway, missing, "whatever").status_code == 404


def test_cancel_200_then_400_once_completed(gateway: Gateway) -> None:
    open_one = create_intent(gateway).json()["data"]
    canceled = gateway.call("POST", f"/v1/payment-intents/{open_one['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["data"]["status"] == "canceled"
    paid = create_intent(gateway).json()["data"]
    assert confirm(gateway, paid["id"], paid["client_secret"]).status_code == 200
    refused = gateway.call("POST", f"/v1/payment-intents/{paid['id']}/cancel")
    assert refused.status_code == 400 and refused.json()["error"]["message"] == "cannot cancel completed payment intent"


# ------------------------------------------------------------------ the customer's side


def test_public_read_has_no_secret_and_no_customer_data(gateway: Gateway) -> None:
    data = create_intent(gateway).json()["data"]
    public = requests.get(f"{gateway.url}/public/payment-intents/{data['id']}", timeout=TIMEOUT)
    assert public.status_code == 200
    text = public.text
    assert data["client_secret"] not in text and "jane@example.com" not in text
    assert public.json()["data"]["merchant_name"] == "Demo Store"


def test_confirm_200_with_payment_id_and_redirect_url(gateway: Gateway) -> None:
    data = create_intent(gateway).json()["data"]
    answer = confirm(gateway, data["id"], data["client_secret"])
    assert answer.status_code == 200, answer.text
    result = answer.json()["data"]
    assert result["status"] == "succeeded" and result["payment_status"] == "captured"
    assert result["redirect_url"] == f"http://127.0.0.1:9/success?session={data['id']}&payment_intent={data['id']}"
    payment = gateway.call("GET", f"/v1/payments/{result['payment_id']}").json()["data"]
    assert payment["status"] == "captured" and payment["metadata"]["payment_intent"] == data["id"]
    # A double-click after success charges nothing more.
    again = confirm(gateway, data["id"], data["client_secret"])
    assert again.status_code == 409


def test_401_invalid_client_secret(gateway: Gateway) -> None:
    data = create_intent(gateway).json()["data"]
    for secret in (None, "", data["client_secret"] + "x", data["client_secret"].replace("_secret_", "_secreT_")):
        answer = confirm(gateway, data["id"], secret)
        assert answer.status_code == 401, secret
        assert answer.json()["error"]["code"] == "INVALID_CLIENT_SECRET"


def test_402_declined_with_remaining_attempts_then_410_max_attempts(gateway: Gateway) -> None:
    data = create_intent(gateway).json()["data"]
    left = []
    for _ in range(5):
        answer = confirm(gateway, data["id"], data["client_secret"], "4000000000000002")
        assert answer.status_code == 402
        assert answer.json()["error"]["code"] == "PAYMENT_DECLINED"
        left.append(answer.json()["error"]["remaining_attempts"])
    assert left == [4, 3, 2, 1, 0]
    locked = confirm(gateway, data["id"], data["client_secret"])
    assert locked.status_code == 410 and locked.json()["error"]["code"] == "MAX_ATTEMPTS_REACHED"
    assert gateway.call("GET", f"/v1/payment-intents/{data['id']}").json()["data"]["status"] == "locked"


def test_410_intent_expired(gateway: Gateway) -> None:
    data = create_intent(gateway).json()["data"]
    expire(gateway, data["id"])
    answer = confirm(gateway, data["id"], data["client_secret"])
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "INTENT_EXPIRED"
    assert gateway.call("GET", f"/v1/payment-intents/{data['id']}").json()["data"]["status"] == "expired"


def test_manual_capture_through_the_payments_api_shows_on_the_intent(gateway: Gateway) -> None:
    data = create_intent(gateway, capture_method="manual").json()["data"]
    result = confirm(gateway, data["id"], data["client_secret"]).json()["data"]
    assert result["payment_status"] == "authorized"
    assert gateway.call("POST", f"/v1/payments/{result['payment_id']}/capture", json_body={}).status_code == 200
    shown = gateway.call("GET", f"/v1/payment-intents/{data['id']}").json()["data"]
    assert shown["payment_status"] == "captured" and shown["amount_captured"] == 2500


# ------------------------------------------------------------------ races


def test_10_concurrent_confirms_charge_exactly_once(gateway: Gateway) -> None:
    key = fresh_key(gateway)
    data = create_intent(gateway, key=key).json()["data"]
    number = luhn_card()
    answers = fire(10, lambda i: confirm(gateway, data["id"], data["client_secret"], number))
    statuses = sorted(a.status_code for a in answers)
    assert all(s < 500 for s in statuses), statuses
    assert statuses == [200] + [409] * 9, statuses
    payments = all_payments(gateway, key)
    assert len(payments) == 1 and payments[0]["status"] == "captured"
    winner = next(a for a in answers if a.status_code == 200).json()["data"]
    assert winner["payment_id"] == payments[0]["id"]


def test_concurrent_declines_and_approvals_count_every_decline_and_charge_once(gateway: Gateway) -> None:
    key = fresh_key(gateway)
    data = create_intent(gateway, key=key).json()["data"]
    cards = ["4000000000009995"] * 4 + [luhn_card() for _ in range(6)]
    answers = fire(10, lambda i: confirm(gateway, data["id"], data["client_secret"], cards[i]))
    statuses = [a.status_code for a in answers]
    assert all(s < 500 for s in statuses), statuses
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 402, 409}
    shown = gateway.call("GET", f"/v1/payment-intents/{data['id']}", key=key).json()["data"]
    assert shown["status"] == "succeeded"
    assert shown["attempts"] == statuses.count(402)
    payments = all_payments(gateway, key)
    assert sum(1 for p in payments if p["status"] == "captured") == 1
    assert sum(1 for p in payments if p["status"] == "failed") == statuses.count(402)
