"""Live payments on the local gateway: refused without a connector; through the fake Adyen with one.

The operator sets the connector with the `tahsil merchants connector` command; the fake Adyen
(tahsil_local/fake_adyen.py) delivers its HMAC-signed notifications to the gateway over HTTP, so a
capture reads capture_pending, then captured, and a refund likewise.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any

from tahsil_local.fake_adyen import FakeAdyen
from tests.support.gateway import Gateway
from tests.support.local_gateway import fresh_card, tahsil

SETTLE_S = 30


def _until(gw: Gateway, key: str, payment_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        payment = gw.call("GET", f"/v1/payments/{payment_id}", key=key).json()["data"]
        if payment["status"] == status or time.monotonic() > deadline:
            return payment
        time.sleep(0.3)


def test_live_payments_need_a_connector_and_settle_through_adyen_notifications(gateway: Gateway) -> None:
    created = json.loads(tahsil(gateway, "merchants", "create", "--name", "Live Connector Shop").stdout)
    merchant, test, live = created["merchant_id"], created["keys"]["test"]["secret"], created["keys"]["live"]["secret"]
    assert gateway.call("POST", "/v1/go-live/reviews", key=test, json_body={"note": "ready"}).status_code == 201
    tahsil(gateway, "go-live", "approve", merchant, "--force", "--reason", "checked")
    card = {"number": fresh_card(), "exp_month": 12, "exp_year": 2030, "cvv": "737"}

    refused = gateway.call("POST", "/v1/payments/authorize", key=live, json_body={"amount": 2500, "currency": "EUR", "card": card})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "LIVE_CONNECTOR_NOT_CONFIGURED"
    test_card = gateway.call("POST", "/v1/payments/authorize", key=live, json_body={
        "amount": 2500, "currency": "EUR", "card": {**card, "number": "4242424242424242"}})
    assert test_card.status_code == 402 and test_card.json()["error"]["code"] == "TEST_CARD_IN_LIVE_MODE"

    api_key, hmac_key = "fake_" + secrets.token_urlsafe(16), secrets.token_hex(32).upper()
    fake = FakeAdyen(api_key=api_key, hmac_key=hmac_key, merchant_account="LocalECOM")
    fake.start()
    try:
        fake.push_to(f"{gateway.url}/connectors/adyen/{merchant}/notifications", every=0.2)
        os.environ["TEST_ADYEN_API_KEY"], os.environ["TEST_ADYEN_HMAC_KEY"] = api_key, hmac_key
        try:
            shown = json.loads(tahsil(gateway, "merchants", "connector", merchant, "adyen", "--merchant-account", "LocalECOM",
                                      "--api-key-env", "TEST_ADYEN_API_KEY", "--hmac-key-env", "TEST_ADYEN_HMAC_KEY",
                                      "--environment", "test", "--base-url", fake.url).stdout)
        finally:
            del os.environ["TEST_ADYEN_API_KEY"], os.environ["TEST_ADYEN_HMAC_KEY"]
        assert shown["connector"] == "adyen" and api_key not in json.dumps(shown)

        auth = gateway.call("POST", "/v1/payments/authorize", key=live, idem="live-1",
                            json_body={"amount": 2500, "currency": "EUR", "card": card})
        assert auth.status_code == 200, auth.text
        payment = auth.json()["data"]
        assert payment["status"] == "authorized" and payment["livemode"] is True and payment["processor_reference"]

        capture = gateway.call("POST", f"/v1/payments/{payment['id']}/capture", key=live, json_body={"amount": 2000})
        assert capture.status_code == 200 and capture.json()["data"]["status"] == "capture_pending"
        assert _until(gateway, live, payment["id"], "captured")["captured_amount"] == 2000

        refund = gateway.call("POST", f"/v1/payments/{payment['id']}/refund", key=live,
                              json_body={"amount": 500, "reason": "one item back"})
        assert refund.status_code == 200 and refund.json()["data"]["status"] == "refund_pending"
        assert _until(gateway, live, payment["id"], "partially_refunded")["refunded_amount"] == 500

        ledger = fake.payments[payment["processor_reference"]]
        assert (ledger.captured, ledger.refunded) == (2000, 500)
        assert gateway.call("POST", "/v1/payments/authorize", key=test, json_body={
            "amount": 100, "currency": "EUR", "card": {**card, "number": "4242424242424242"}}).status_code == 200
        assert fake.requests == 3  # authorize, capture, refund: test mode never reached it
    finally:
        fake.stop()
    tahsil(gateway, "merchants", "connector", merchant, "none")
    again = gateway.call("POST", "/v1/payments/authorize", key=live, json_body={"amount": 2500, "currency": "EUR", "card": card})
    assert again.status_code == 403
