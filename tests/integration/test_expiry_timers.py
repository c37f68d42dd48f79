"""The expiry time wheel for real: moto runs the bucket executions, their waits shortened by parameters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.gateway import Gateway
from tests.support.local_gateway import SEED_AUTHORIZE
from tests.support.webhooks import card_number


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # Authorizations last 6 s here, the expiring warning comes 3 s before the end, and buckets are 2 s wide.
    gw = Gateway(Path(tmp_path_factory.mktemp("quick")),
                 overrides="AuthorizationTtlSeconds=6 ExpiryWarningSeconds=3 ExpiryBucketSeconds=2")
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


def wheel_executions(gw: Gateway) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", endpoint_url=gw.state["aws_endpoint_url"], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if "ExpiryStateMachine" in m["name"])
    return sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]


def test_many_authorizations_share_one_execution_per_bucket(quick: Gateway) -> None:
    before = {e["name"] for e in wheel_executions(quick)}
    started = time.time()
    cards = [{**SEED_AUTHORIZE["card"], "number": card_number(700 + n)} for n in range(12)]  # past the velocity rules
    ids = [quick.call("POST", "/v1/payments/authorize", json_body={**SEED_AUTHORIZE, "card": card}).json()["data"]["id"]
           for card in cards]
    elapsed = time.time() - started
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and any(
            quick.call("GET", f"/v1/payments/{pid}").json()["data"]["status"] != "expired" or
            "payment.expired" not in types_for(quick, pid) for pid in ids):
        time.sleep(0.5)
    for pid in ids:
        assert types_for(quick, pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    new = [e for e in wheel_executions(quick) if e["name"] not in before]
    # two deadlines per authorization, in 2-second buckets: bounded by the buckets the authorizations span, not by 24
    assert 0 < len(new) <= 2 * (int(elapsed / 2) + 2)
    assert all(e["name"].startswith("wheel-2s-") for e in new)


def test_ctrl_c_stops_promptly_even_with_timers_waiting(tmp_path: Path) -> None:
    gw = Gateway(tmp_path)
    assert gw.call("POST", "/v1/payments/authorize", json_body=SEED_AUTHORIZE).status_code == 200
    time.sleep(1.5)  # the stream poller has started the buckets' executions, waiting 6 and 7 days
    started = time.monotonic()
    assert gw.stop() == 0
    assert time.monotonic() - started < 10
