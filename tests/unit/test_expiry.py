"""Expiry timers and test-mode time travel: the transitions, the events, exactly once."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.conftest import invoke, load_event
from tests.unit.test_payments import act, authorize, get, table_items

DAY = 86400


def advance(key: str, pid: str, seconds: int):
    return invoke("AdvancePaymentClockFunction", load_event("test-helpers-advance-payment", key=key, path_id=pid,
                                                            body={"seconds": seconds}))


def events_of(pid: str) -> list[str]:
    rows = [json.loads(r["payload"]) for r in table_items() if r["pk"].startswith("EVT")]
    return [e["type"] for e in sorted(rows, key=lambda e: e["sequence"]) if e["data"]["object"]["id"] == pid]


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


def test_advancing_six_days_sends_the_expiring_warning_once(sk: str) -> None:
    pid = authorize(sk).data["id"]
    assert advance(sk, pid, 6 * DAY + 60).data["status"] == "authorized"
    assert advance(sk, pid, 60).data["status"] == "authorized"
    assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring"]


def test_advancing_past_seven_days_warns_then_expires_in_order_with_an_expiry_transaction(sk: str) -> None:
    pid = authorize(sk).data["id"]
    answer = advance(sk, pid, 8 * DAY)
    assert answer.status == 200 and answer.data["status"] == "expired"
    assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    txns = [r for r in table_items() if r["pk"].startswith("TXN") and r["payment_id"] == pid]
    assert sorted(t["type"] for t in txns) == ["authorization", "expiry"]
    assert act("capture", sk, pid, {}).status == 410


def test_the_real_timer_finds_nothing_to_do_after_time_travel(sk: str) -> None:
    from tahsil.payments import expiry

    pid = authorize(sk).data["id"]
    advance(sk, pid, 8 * DAY)
    assert expiry.timer_step({"action": "warn", "kind": "payment", "id": pid})["done"] is False
    assert expiry.timer_step({"action": "expire", "kind": "payment", "id": pid})["done"] is False
    assert events_of(pid).count("payment.expired") == 1


def test_a_captured_payment_is_left_alone_by_its_timer(sk: str) -> None:
    from tahsil.payments import expiry

    pid = authorize(sk).data["id"]
    act("capture", sk, pid, {})
    assert advance(sk, pid, 8 * DAY).data["status"] == "captured"
    assert expiry.expire(pid) is False and expiry.warn(pid) is False
    assert "payment.expired" not in events_of(pid)


def test_time_travel_is_for_test_keys_only(merchant: dict[str, Any], fake_adyen: Any) -> None:
    from tests.unit.connector_support import LIVE_CARD, connect

    connect(merchant["merchant_id"], fake_adyen)  # live payments go to a processor connector (the fake Adyen)
    live = merchant["keys"]["live"]["secret"]
    pid = authorize(live, {"amount": 100, "currency": "USD", "card": LIVE_CARD}).data["id"]
    assert advance(live, pid, DAY).status == 404


def test_bad_advance_input_is_a_400(sk: str) -> None:
    pid = authorize(sk).data["id"]
    answer = advance(sk, pid, 0)
    assert answer.status == 400 and answer.error["param"] == "seconds"


def test_new_authorizations_start_one_timer_each_from_the_outbox(sk: str) -> None:
    import boto3

    from tests.unit.test_webhooks import invoke_raw, stream_records

    pid = authorize(sk).data["id"]
    authorize(sk, sale=True)  # a sale needs no timer
    records = [r for r in stream_records() if r["dynamodb"]["Keys"]["sk"]["S"] == "EVT"]
    assert invoke_raw("ExpiryTimersFunction", {"Records": records}) == {"batchItemFailures": []}
    assert invoke_raw("ExpiryTimersFunction", {"Records": records}) == {"batchItemFailures": []}  # replayed: no-op
    sfn = boto3.client("stepfunctions")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if "Expiry" in m["name"])
    [execution] = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    state = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert state["id"] == pid and state["kind"] == "payment"
    assert state["warn_at"] < state["expires_at"] == get(sk, pid).data["expires_at"]


def test_a_capture_racing_the_expiry_has_exactly_one_winner_in_50_trials(sk: str) -> None:
    from tahsil.kernel import clock
    from tahsil.payments import expiry
    from tahsil.store import dal

    outcomes = []
    from tests.integration.test_webhooks_pipeline import card_number

    for trial in range(50):
        pid = authorize(sk, {"amount": 500, "currency": "USD", "card": {"number": card_number(trial), "exp_month": 12,
                                                                          "exp_year": 2030, "cvv": "123"}}).data["id"]
        boundary = clock.now().replace(microsecond=0) + __import__("datetime").timedelta(seconds=1)
        dal.update(dal.payments_table(), f"PAY#{pid}", "PAY", "SET expires_at = :at", vals=dal.values(at=clock.iso(boundary)))
        results: dict[str, Any] = {}

        def capture() -> None:
            time.sleep(max(0.0, (boundary - clock.now()).total_seconds() - 0.002))  # noqa: B023
            results["capture"] = act("capture", sk, pid, {}).status  # noqa: B023 - joined before the loop moves on

        def expire() -> None:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if expiry.expire(pid):  # noqa: B023
                    results["expire"] = True  # noqa: B023
                    return
                if get(sk, pid).data["status"] == "captured":  # noqa: B023
                    return
                time.sleep(0.001)

        threads = [threading.Thread(target=capture), threading.Thread(target=expire)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        final = get(sk, pid).data["status"]
        kinds = events_of(pid)
        if final == "captured":
            assert results["capture"] == 200 and "expire" not in results and "payment.expired" not in kinds
        else:
            assert final == "expired" and results.get("expire") and results["capture"] == 410
            assert "payment.captured" not in kinds
        assert kinds.count("payment.captured") + kinds.count("payment.expired") == 1
        outcomes.append(final)
    assert len(outcomes) == 50


# ------------------------------------------------------------------ payment intents


def advance_intent(key: str, intent_id: str, seconds: int):
    return invoke("AdvanceIntentClockFunction", load_event("test-helpers-advance-intent", key=key, path_id=intent_id,
                                                           body={"seconds": seconds}))


def test_an_intent_expires_after_an_hour_once_and_then_refuses_confirms(sk: str) -> None:
    from tahsil.payments import intents
    from tests.unit.test_intents import confirm, create

    created = create(sk).data
    assert advance_intent(sk, created["id"], 1800).data["status"] == "created"
    assert advance_intent(sk, created["id"], 1801).data["status"] == "expired"
    assert intents.expire(created["id"]) is False  # the real timer later finds nothing to do
    kinds = [json.loads(r["payload"])["type"] for r in table_items() if r["pk"].startswith("EVT")]
    assert kinds.count("payment_intent.expired") == 1
    answer = confirm(created["id"], created["client_secret"])
    assert answer.status == 410 and answer.error["code"] == "INTENT_EXPIRED"


def test_a_paid_intent_is_left_alone_by_its_timer(sk: str) -> None:
    from tahsil.payments import intents
    from tests.unit.test_intents import confirm, create

    created = create(sk).data
    assert confirm(created["id"], created["client_secret"]).status == 200
    assert advance_intent(sk, created["id"], 7200).data["status"] == "succeeded"
    assert intents.expire(created["id"]) is False
