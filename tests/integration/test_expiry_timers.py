"""The expiry timer for real: moto runs the Step Functions execution, its waits shortened by parameters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Gateway
from tests.integration.test_local_gateway import SEED_AUTHORIZE


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # Authorizations last 6 s here, and the expiring warning comes 3 s before the end.
    gw = Gateway(Path(tmp_path_factory.mktemp("quick")), overrides="AuthorizationTtlSeconds=6 ExpiryWarningSeconds=3")
    yield gw
    gw.stop()


def types_for(gw: Gateway, payment_id: str) -> list[str]:
    events = gw.call("GET", f"/v1/events?object_id={payment_id}&limit=100").json()["data"]["events"]
    return [e["type"] for e in sorted(events, key=lambda e: e["sequence"])]


def test_the_timer_warns_then_expires_an_uncaptured_authorization(quick: Gateway) -> None:
    payment = quick.call("POST", "/v1/payments/authorize", json_body=SEED_AUTHORIZE).json()["data"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "payment.expired" not in types_for(quick, payment["id"]):
        time.sleep(0.5)
    assert types_for(quick, payment["id"]) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    stored = quick.call("GET", f"/v1/payments/{payment['id']}").json()["data"]
    assert stored["status"] == "expired"
    txns = quick.call("GET", "/v1/transactions?limit=100").json()["data"]["transactions"]
    assert [t["type"] for t in txns if t["payment_id"] == payment["id"]].count("expiry") == 1


def test_a_payment_captured_before_the_timer_fires_is_left_alone(quick: Gateway) -> None:
    # The capture function's first call is a cold start (a new process, as in Lambda): take it
    # before the 3 s window between the authorization and the warning opens.
    assert quick.call("POST", "/v1/payments/pay_0000000000000000000000/capture", json_body={}).status_code in (400, 404)
    payment = quick.call("POST", "/v1/payments/authorize", json_body={**SEED_AUTHORIZE, "amount": 4200}).json()["data"]
    assert quick.call("POST", f"/v1/payments/{payment['id']}/capture", json_body={}).status_code == 200
    time.sleep(8)
    assert quick.call("GET", f"/v1/payments/{payment['id']}").json()["data"]["status"] == "captured"
    assert types_for(quick, payment["id"]) == ["payment.authorized", "payment.captured"]


def test_ctrl_c_stops_promptly_even_with_timers_waiting(tmp_path: Path) -> None:
    gw = Gateway(tmp_path)
    assert gw.call("POST", "/v1/payments/authorize", json_body=SEED_AUTHORIZE).status_code == 200
    time.sleep(1.5)  # the stream poller has started the 7-day expiry execution
    started = time.monotonic()
    assert gw.stop() == 0
    assert time.monotonic() - started < 10
