"""The money path under crashes, in both modes, through the HTTP handlers with Idempotency-Keys.

For every mutating endpoint (authorize, sale, capture, void, refund), in test mode (the simulator) and in live
mode (the fake Adyen), the execution environment is killed at each step of the lifecycle
(``tahsil.payments.lifecycle.checkpoint``: before the recovery point, before the call, after the processor
answered, after the commit). A kill is a ``BaseException``: nothing in the request runs after it, so the
Idempotency-Key's lock stays held as a dead Lambda leaves it, until its deadline lapses. Then the merchant
retries with the same key, notifications arrive and the recovery worker runs, and the suite asserts:

- one processor operation per Tahsil operation (the fake Adyen's ledger), none done twice;
- every event exactly once (no duplicate type per payment);
- same-key retries get the first answer (the second retry replays the same body);
- per merchant, Tahsil's captured - refunded equals the processor's;
- the ledger invariant: every balance transaction balances, and the balance equals the sum of its entries
  (and Tahsil's captured - refunded), whatever was killed and retried.
"""

from __future__ import annotations

from typing import Any

import pytest

from tahsil_local.fake_adyen import FakeAdyen
from tests.support.connectors import act, all_items, connect, deliver, events_of, get, pay, run_recovery

STAGES = ("recovery_point", "call", "commit", "answer")
OPERATIONS = ("authorize", "sale", "capture", "void", "refund")


class Killed(BaseException):
    """The execution environment died: no ``except Exception`` in the request sees it."""


def _lapse_locks() -> None:
    """Time passes: every in-progress Idempotency-Key lock outlives its dead Lambda's deadline."""
    import os

    from tahsil.store import aws

    client = aws.client("dynamodb")
    table = os.environ["IDEMPOTENCY_TABLE"]
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if item["status"]["S"] == "INPROGRESS":
                client.update_item(TableName=table, Key={"id": item["id"]},
                                   UpdateExpression="SET in_progress_expiration = :past",
                                   ExpressionAttributeValues={":past": {"N": "0"}})


def _setup(op: str, key: str, mid: str, fake: FakeAdyen | None) -> str | None:
    """The payment the operation acts on, settled: authorized for capture and void, captured for refund."""
    if op in ("authorize", "sale"):
        return None
    answer = pay(key, amount=5000, sale=op == "refund", card=None if fake else {"number": "4242424242424242"})
    assert answer.status == 200, answer.body
    if fake is not None:
        deliver(mid, fake)
    return str(answer.data["id"])


def _request(op: str, key: str, payment_id: str | None, idem: str, live: bool) -> Any:
    card = None if live else {"number": "4242424242424242"}
    if op in ("authorize", "sale"):
        return pay(key, amount=5000, sale=op == "sale", idem=idem, card=card)
    body = {"amount": 2000} if op == "capture" else {"amount": 2000, "reason": "requested_by_customer"} if op == "refund" \
        else {"reason": "requested_by_customer"}
    return act(op, key, str(payment_id), body=body, idem=idem)


def _settle(mid: str, fake: FakeAdyen | None) -> None:
    for _ in range(3):
        if fake is not None:
            deliver(mid, fake)
        run_recovery(rounds=1)


def _processor_books(fake: FakeAdyen) -> int:
    return sum(ledger.captured - ledger.refunded for ledger in fake.payments.values())


def assert_ledger_holds(mid: str, mode: str) -> None:
    """Every entry set balances; the balance counters equal the sum of the entries and the payments' money."""
    from tahsil.payments import ledger

    rows = ledger.history(mid, mode)
    assert all(ledger.balanced(row) for row in rows), rows
    per_currency: dict[str, int] = {}
    for row in rows:
        per_currency[row["currency"]] = per_currency.get(row["currency"], 0) + row["amount"]
    counted = {b["currency"]: b["amount"] for b in ledger.balance(mid, mode)["pending"]}
    assert {c: v for c, v in counted.items() if v} == {c: v for c, v in per_currency.items() if v}
    assert sum(per_currency.values()) == _tahsil_books(mode)


def _tahsil_books(mode: str) -> int:
    return sum(i["captured_amount"] - i["refunded_amount"] for i in all_items()
               if i["pk"].startswith("PAY#") and i["mode"] == mode and i["status"] != "failed")


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("mode", ["test", "live"])
def test_a_killed_request_retried_with_its_key_is_done_once_and_answers_the_first_answer(
        merchant: dict[str, Any], fake_adyen: FakeAdyen, monkeypatch: pytest.MonkeyPatch,
        mode: str, op: str, stage: str) -> None:
    from tahsil.payments import lifecycle

    live = mode == "live"
    mid, key = merchant["merchant_id"], merchant["keys"][mode]["secret"]
    fake = fake_adyen if live else None
    if live:
        connect(mid, fake_adyen)
    target = _setup(op, key, mid, fake)
    killed: list[str] = []

    def kill(at: str, reference: str) -> None:
        if at == stage and not killed:
            killed.append(reference)
            raise Killed(f"killed at {at}")

    monkeypatch.setattr(lifecycle, "checkpoint", kill)
    try:
        first = _request(op, key, target, "fault-key", live)
    except Killed:
        first = None
    monkeypatch.setattr(lifecycle, "checkpoint", lambda at, reference: None)
    if first is not None:  # this operation has no such step in this mode: nothing was killed
        assert not killed
    _lapse_locks()
    _settle(mid, fake)

    retry = _request(op, key, target, "fault-key", live)
    assert retry.status in (200, 202), retry.body
    _settle(mid, fake)
    again = _request(op, key, target, "fault-key", live)
    if first is not None and first.status == 200:
        assert retry.body == first.body or retry.status == 200
    if retry.status == 200:
        assert again.status == 200 and again.body == retry.body  # the same-key answer never changes once final
    # Exactly one payment, each of its events once, and what it says is what the processor did.
    payments = [i for i in all_items() if i["pk"].startswith("PAY#") and i["mode"] == mode]
    assert len(payments) == 1
    payment = get(key, payments[0]["id"]).data
    types = events_of(payment["id"])
    assert len(types) == len(set(types)), types
    expected = {"authorize": "authorized", "sale": "captured", "capture": "captured", "void": "voided",
                "refund": "partially_refunded"}[op]
    assert payment["status"] == expected, (payment["status"], types)
    assert_ledger_holds(mid, mode)
    if live:
        assert len(fake_adyen.payments) == 1  # one authorization at the processor, whatever was retried
        [ledger] = fake_adyen.payments.values()
        kinds = [kind for kind, _, _ in ledger.operations]
        assert len(kinds) == len(set(kinds)), kinds  # each modification once at the processor
        assert _processor_books(fake_adyen) == _tahsil_books("live")
