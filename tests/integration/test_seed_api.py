"""Seed 002's curl examples, each translated into a requests call, against the local gateway under
the seed's own base URLs (``/api/v1``, ``/api/public``), with only the host and the key changed.

Bodies, headers and Idempotency-Keys are the seed's, verbatim; ids in paths are the ones the
earlier calls returned (the seed's are placeholders). A fresh merchant runs them, so the seed's
fixed Idempotency-Keys meet no earlier use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.gateway import Gateway

AUTHORIZE = {
    "amount": 9999, "currency": "USD",
    "card": {"number": "4242424242424242", "cardholder_name": "John Doe", "exp_month": 12, "exp_year": 2027,
             "cvv": "123"},
    "customer": {"email": "john@example.com", "name": "John Doe"},
    "description": "Order #12345 - Premium Plan",
    "metadata": {"order_id": "12345", "plan": "premium"},
}
SALE = {
    "amount": 4999, "currency": "USD",
    "card": {"number": "5555555555554444", "cardholder_name": "Jane Smith", "exp_month": 6, "exp_year": 2028,
             "cvv": "456"},
    "description": "Subscription - Monthly Plan",
}
INTENT = {
    "amount": 9999, "currency": "USD",
    "success_url": "https://yourstore.com/order/success?session_id={CHECKOUT_SESSION_ID}",
    "cancel_url": "https://yourstore.com/order/cancel",
    "description": "Order #12345 - Premium Plan",
    "customer_email": "customer@example.com",
    "metadata": {"order_id": "12345"},
}
CONFIRM = {
    "card": {"number": "4242424242424242", "cardholder_name": "John Doe", "exp_month": 12, "exp_year": 2027,
             "cvv": "123"},
    "customer_email": "customer@example.com",
}


class Seed:
    """``curl`` as the seed writes it: base URL ``{host}/api/v1`` and ``{host}/api/public``."""

    def __init__(self, gw: Gateway, key: str) -> None:
        self.v1 = gw.url + "/api/v1"
        self.public = gw.url + "/api/public"
        self.key = key

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, idem: str | None = None) -> requests.Response:
        headers = {"X-API-Key": self.key}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idem:
            headers["Idempotency-Key"] = idem
        return requests.request(method, self.v1 + path, headers=headers,
                                data=json.dumps(body) if body is not None else None, timeout=30)


@pytest.fixture(scope="module")
def seed(gateway: Gateway) -> Seed:
    env = {**os.environ, "TAHSIL_STATE_DIR": str(gateway.state_dir), "TAHSIL_PORT": str(gateway.port)}
    out = subprocess.run([sys.executable, "-m", "tahsil_local.cli", "merchants", "create", "--name", "Seed Store",
                          "--local"], env=env, capture_output=True, text=True, timeout=60, check=True)
    return Seed(gateway, json.loads(out.stdout)["keys"]["test"]["secret"])


def ok(answer: requests.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is True
    return body["data"]


def test_payment_operations_from_the_seed(seed: Seed) -> None:
    auth = ok(seed.api("POST", "/payments/authorize", AUTHORIZE, idem="order-12345-auth"))
    assert (auth["status"], auth["card_brand"], auth["card_last4"], auth["fraud_decision"]) == \
        ("authorized", "visa", "4242", "approve")
    assert auth["response_code"] == "00" and auth["transaction_id"].startswith("txn_")
    replay = seed.api("POST", "/payments/authorize", AUTHORIZE, idem="order-12345-auth")
    assert replay.json()["data"]["id"] == auth["id"] and replay.headers["Idempotent-Replayed"] == "true"

    sale = ok(seed.api("POST", "/payments/sale", SALE, idem="order-12345-sale"))
    assert (sale["status"], sale["card_brand"], sale["card_last4"]) == ("captured", "mastercard", "4444")

    captured = ok(seed.api("POST", f"/payments/{auth['id']}/capture", {"amount": 9999}))
    assert (captured["status"], captured["captured_amount"]) == ("captured", 9999)
    refunded = ok(seed.api("POST", f"/payments/{auth['id']}/refund",
                           {"amount": 2500, "reason": "Product damaged - partial refund"}))
    assert (refunded["status"], refunded["refunded_amount"], refunded["remaining_amount"]) == \
        ("partially_refunded", 2500, 7499)

    held = ok(seed.api("POST", "/payments/authorize", AUTHORIZE))
    voided = ok(seed.api("POST", f"/payments/{held['id']}/void", {"reason": "Customer requested order cancellation"}))
    assert (voided["status"], voided["void_reason"]) == ("voided", "Customer requested order cancellation")

    got = ok(seed.api("GET", f"/payments/{auth['id']}"))
    assert got["customer"] == AUTHORIZE["customer"] and got["metadata"] == AUTHORIZE["metadata"]
    assert got["description"] == "Order #12345 - Premium Plan"

    txn = ok(seed.api("GET", f"/transactions/{auth['transaction_id']}"))
    assert (txn["payment_id"], txn["status"], txn["response_code"]) == (auth["id"], "authorized", "00")
    listing = ok(seed.api("GET", "/transactions?status=authorized&limit=20&offset=0"))
    assert (listing["limit"], listing["offset"]) == (20, 0)
    assert {t["payment_id"] for t in listing["transactions"]} >= {auth["id"], held["id"]}

    # The same payment under both base URLs: one API.
    assert requests.get(f"{seed.v1.removesuffix('/api/v1')}/v1/payments/{auth['id']}",
                        headers={"X-API-Key": seed.key}, timeout=30).json()["data"] == got


def test_seed_error_examples(seed: Seed) -> None:
    low = seed.api("POST", "/payments/authorize", {**AUTHORIZE, "amount": 0})
    assert low.status_code == 400 and low.json()["error"]["param"] == "amount"
    declined = seed.api("POST", "/payments/authorize",
                        {**AUTHORIZE, "card": {**AUTHORIZE["card"], "number": "4000000000009995"}})
    assert declined.status_code == 402 and declined.json()["error"]["decline_code"] == "51"
    fraud = seed.api("POST", "/payments/authorize", {**AUTHORIZE, "card": {**AUTHORIZE["card"], "number": "4000000000000259"}})
    assert fraud.status_code == 402
    assert fraud.json()["error"]["message"] == "payment declined: high fraud risk (score: 85)"
    assert seed.api("GET", "/payments/pay_abc123def456").status_code == 404


def test_payment_intent_flow_from_the_seed(seed: Seed) -> None:
    intent = ok(seed.api("POST", "/payment-intents", INTENT), 201)
    assert intent["status"] == "created" and intent["success_url"] == INTENT["success_url"]
    assert intent["client_secret"].startswith(intent["id"] + "_secret_")

    public = requests.get(f"{seed.public}/payment-intents/{intent['id']}", timeout=30)
    shown = ok(public)
    assert "client_secret" not in shown
    # unlike the seed's example, no return URLs: they carry order data (docs/decisions/security.md, "Public endpoints")
    assert "success_url" not in shown and "cancel_url" not in shown and shown["payment_id"] is None

    paid = requests.post(f"{seed.public}/payment-intents/{intent['id']}/confirm",
                         headers={"Content-Type": "application/json", "X-Client-Secret": intent["client_secret"]},
                         data=json.dumps(CONFIRM), timeout=30)
    confirmed = ok(paid)
    assert confirmed["payment_id"].startswith("pay_")
    query = parse_qs(urlsplit(confirmed["redirect_url"]).query)
    assert query == {"session_id": [intent["id"]], "payment_intent": [intent["id"]]}
    after = ok(requests.get(f"{seed.public}/payment-intents/{intent['id']}", timeout=30))
    assert (after["status"], after["payment_id"]) == ("succeeded", confirmed["payment_id"])

    completed = seed.api("POST", f"/payment-intents/{intent['id']}/cancel")
    assert completed.status_code == 400
    assert completed.json()["error"]["message"] == "cannot cancel completed payment intent"

    other = ok(seed.api("POST", "/payment-intents", INTENT), 201)
    canceled = seed.api("POST", f"/payment-intents/{other['id']}/cancel")
    assert canceled.status_code == 200
    body = canceled.json()
    assert (body["success"], body["message"], body["data"]["status"]) == (True, "payment intent canceled", "canceled")


def test_seed_paths_keep_the_canonical_route_in_request_logs(seed: Seed, gateway: Gateway) -> None:
    made = ok(seed.api("POST", "/payments/authorize", AUTHORIZE))
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not found and time.monotonic() < deadline:
        page = ok(seed.api("GET", "/request-logs?limit=50"))
        found = [r for r in page["request_logs"] if r["method"] == "POST" and r["status"] == 200
                 and r["path"] == "/v1/payments/authorize"]
        time.sleep(0.3)
    assert found, "no request log record for the authorize"
    assert found[0]["route"] == "/v1/payments/authorize"
    assert made["id"]
    assert seed.api("GET", "/nowhere").status_code == 404
