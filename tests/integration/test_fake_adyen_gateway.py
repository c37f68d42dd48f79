"""`make run-live` (`tahsil dev --fake-adyen`, or TAHSIL_FAKE_ADYEN=1): the local gateway starts a fake Adyen on
127.0.0.1 as the demo merchant's live connector, approves the demo's go-live, and receives the fake's signed
notifications; a live payment goes authorize -> capture (capture_pending) -> CAPTURE notification -> captured.
The fake stops with the gateway."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway

SETTLE_S = 30
CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2030, "cvv": "737", "cardholder_name": "Ada L"}


def _control(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method="GET" if body is None else "POST",
                                     data=None if body is None else json.dumps(body).encode())
    with opener.open(request, timeout=10) as answer:
        return json.loads(answer.read())


def _until(gw: Gateway, key: str, payment_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        payment = gw.call("GET", f"/v1/payments/{payment_id}", key=key).json()["data"]
        if payment["status"] == status or time.monotonic() > deadline:
            return payment
        time.sleep(0.3)


def test_run_live_takes_a_live_payment_through_the_fake_adyen_end_to_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAHSIL_FAKE_ADYEN", "1")
    gw = Gateway(tmp_path)
    try:
        fake = gw.state["fake_adyen"]
        assert urllib.parse.urlsplit(fake["url"]).hostname == "127.0.0.1"
        assert fake["notify_url"] == f"{gw.url}/connectors/adyen/{gw.state['merchant_id']}/notifications"
        live = gw.key("live")
        assert gw.call("GET", "/v1/go-live", key=gw.key()).json()["data"]["live_enabled"] is True

        auth = gw.call("POST", "/v1/payments/authorize", key=live, idem="run-live-1",
                       json_body={"amount": 2500, "currency": "EUR", "card": CARD})
        assert auth.status_code == 200, auth.text
        payment = auth.json()["data"]
        assert payment["status"] == "authorized" and payment["livemode"] is True
        psp = payment["processor_reference"]

        capture = gw.call("POST", f"/v1/payments/{payment['id']}/capture", key=live, idem="run-live-cap",
                          json_body={"amount": 2000})
        assert capture.status_code == 200, capture.text
        assert capture.json()["data"]["status"] == "capture_pending"
        settled = _until(gw, live, payment["id"], "captured")
        assert (settled["status"], settled["captured_amount"]) == ("captured", 2000)

        state = _control(fake["control_url"])
        assert state["payments"][psp]["captured"] == 2000
        assert state["requests"] == 2  # one authorisation, one capture
        deadline = time.monotonic() + SETTLE_S
        while state["notifications"]["delivered"] < 2 and time.monotonic() < deadline:  # AUTHORISATION, CAPTURE
            time.sleep(0.2)
            state = _control(fake["control_url"])
        assert state["notifications"]["delivered"] == 2 and state["notifications"]["undelivered"] == 0
    finally:
        gw.stop()
    port = urllib.parse.urlsplit(fake["url"]).port
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(2)
        probe.connect(("127.0.0.1", port))  # stopped with the gateway
