"""The integration trace and fulfillment: one payment's hand-off, with the ids support needs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support.calls import CARD, flush_logs, fresh_card
from tests.support.console import call
from tests.support.golive import sale
from tests.support.intents import confirm, create, intent_body
from tests.support.webhooks import Receiver, create_endpoint, run_pipeline


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


def trace(key: str, payment_id: str) -> dict[str, Any]:
    answer = call("payments-trace", key, path_id=payment_id)
    assert answer.status == 200, answer.body
    return answer.data


def test_a_hosted_checkout_payment_traces_from_the_request_to_fulfillment(local: Any, sk: str, receiver: Receiver) -> None:  # noqa: F811
    endpoint = create_endpoint(sk, receiver.url, ["payment.captured"]).data
    intent = create(sk, intent_body(), idem="checkout-1").data
    paid = confirm(intent["id"], intent["client_secret"], {"number": fresh_card()}).data
    run_pipeline()
    pid = paid["payment_id"]
    fulfilled = call("payments-fulfillment", sk, path_id=pid, body={"reference": "SCH-2026-00041"}, idem="ful-1")
    assert fulfilled.status == 200 and fulfilled.data["id"].startswith("ful_")
    flush_logs()

    t = trace(sk, pid)
    assert t["complete"] is True and t["status"] == "fulfilled" and t["payment_intent"]["id"] == intent["id"]
    steps = {s["step"]: s for s in t["handoff"]}
    assert [s["step"] for s in t["handoff"]] == ["checkout", "capture", "webhook", "fulfillment", "support"]
    assert steps["checkout"]["status"] == "passed" and intent["id"] in steps["checkout"]["evidence"]
    assert steps["capture"]["status"] == "captured" and steps["capture"]["result"] == "$99.99"
    assert steps["webhook"]["status"] == "delivered" and steps["webhook"]["result"] == "200 OK"
    assert steps["fulfillment"]["status"] == "fulfilled" and steps["fulfillment"]["evidence"] == [fulfilled.data["id"]]
    assert steps["support"]["status"] == "traceable" and endpoint["id"] in steps["support"]["evidence"]

    kinds = [e["kind"] for e in t["timeline"]]
    assert {"request", "event", "webhook_attempt", "fulfillment"} <= set(kinds)
    seconds = [dt.datetime.fromisoformat(e["at"].replace("Z", "+00:00")).replace(microsecond=0) for e in t["timeline"]]
    assert seconds == sorted(seconds)  # oldest first (events and attempts carry whole seconds)
    first_request = kinds.index("request")
    assert first_request < kinds.index("event") and kinds.index("event") < kinds.index("webhook_attempt")
    actions = [e["action"] for e in t["timeline"] if e["kind"] == "request"]
    assert "POST /v1/payment-intents" in actions
    assert f"POST /public/payment-intents/{intent['id']}/confirm" in actions
    assert f"POST /v1/payments/{pid}/fulfillment" in actions
    customer = next(e for e in t["timeline"] if e["action"].startswith("POST /public/"))
    assert customer["actor"] == "Customer checkout"
    [attempt] = [e for e in t["timeline"] if e["kind"] == "webhook_attempt"]
    assert attempt["ids"]["endpoint_id"] == endpoint["id"] and attempt["result"] == "200 OK"
    assert t["ids"]["attempt_ids"] == [attempt["ids"]["attempt_id"]]
    assert len(t["ids"]["request_ids"]) >= 3 and len(t["ids"]["event_ids"]) >= 3  # intent created, succeeded; payment


def test_an_api_payment_without_endpoints_shows_what_is_missing(sk: str) -> None:
    paid = sale(sk).data
    flush_logs()
    t = trace(sk, paid["id"])
    steps = {s["step"]: s for s in t["handoff"]}
    assert t["payment_intent"] is None and t["complete"] is False
    assert steps["checkout"]["status"] == "passed" and steps["checkout"]["action"] == "Create the payment (API)"
    assert steps["webhook"]["status"] in ("pending", "no_endpoint") and steps["fulfillment"]["status"] == "pending"
    assert steps["support"]["status"] == "partial"


def test_an_authorized_payment_is_not_yet_captured(sk: str) -> None:
    paid = call("payments-authorize", sk, body={"amount": 700, "currency": "EUR", "card": {**CARD, "number": fresh_card()}}).data
    t = trace(sk, paid["id"])
    capture = next(s for s in t["handoff"] if s["step"] == "capture")
    assert capture["status"] == "authorized" and t["handoff"][2]["status"] == "not_applicable"
    refused = call("payments-fulfillment", sk, path_id=paid["id"], body={"reference": "X-1"})
    assert refused.status == 409 and refused.error["status"] == "authorized"


def test_fulfillment_is_recorded_once(sk: str) -> None:
    pid = sale(sk).data["id"]
    first = call("payments-fulfillment", sk, path_id=pid, body={"reference": "ORDER-1", "note": "shipped"})
    same = call("payments-fulfillment", sk, path_id=pid, body={"reference": "ORDER-1"})
    other = call("payments-fulfillment", sk, path_id=pid, body={"reference": "ORDER-2"})
    assert first.status == same.status == 200 and same.data["id"] == first.data["id"] and same.data["note"] == "shipped"
    assert other.status == 409 and other.error["param"] == "reference" and other.error["fulfillment_id"] == first.data["id"]
    assert call("payments-fulfillment", sk, path_id=pid, body={"reference": ""}).error["param"] == "reference"


def test_another_merchant_or_mode_sees_nothing(sk: str, merchant: dict[str, Any]) -> None:
    from tahsil.console import ops

    pid = sale(sk).data["id"]
    other = ops.create_merchant("Other")["keys"]["test"]["secret"]
    for key in (other, merchant["keys"]["live"]["secret"]):
        assert call("payments-trace", key, path_id=pid).status == 404
        assert call("payments-fulfillment", key, path_id=pid, body={"reference": "x"}).status == 404


def test_an_endpoints_delivery_log_pages_newest_first(local: Any, sk: str, receiver: Receiver) -> None:  # noqa: F811
    endpoint = create_endpoint(sk, receiver.url, ["payment.captured"]).data
    paid = [sale(sk).data["id"] for _ in range(3)]
    run_pipeline()
    first = call("webhook-endpoints-deliveries", sk, path_id=endpoint["id"], query={"limit": "2"})
    assert first.status == 200 and first.data["has_more"] is True and len(first.data["deliveries"]) == 2
    rest = call("webhook-endpoints-deliveries", sk, path_id=endpoint["id"],
                query={"limit": "2", "starting_after": first.data["next_starting_after"]})
    rows = first.data["deliveries"] + rest.data["deliveries"]
    assert rest.data["has_more"] is False and len(rows) == 3
    assert all(r["status"] == "delivered" and r["last_status_code"] == 200 for r in rows)
    assert len({r["event_id"] for r in rows}) == 3 and len(paid) == 3
    assert call("webhook-endpoints-deliveries", sk, path_id=endpoint["id"],
                query={"starting_after": "evt_NotOneOfThese00000000"}).error["param"] == "starting_after"
