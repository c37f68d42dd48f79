"""Expiry: the timers that make stored state, events and transactions agree with the clock.

Reads already report an authorization past ``expires_at`` as expired. The timer (a Step
Functions execution per authorization, started from the outbox stream) then:
  1. waits until ``expires_at - EXPIRY_WARNING`` and emits ``payment.authorization_expiring``;
  2. waits until ``expires_at`` and flips authorized -> expired, with an ``expiry``
     transaction and ``payment.expired``, in one conditional transaction.
A payment captured or voided first makes both steps no-ops (their conditions fail), so a
capture racing the expiry has exactly one winner. Test-mode time travel (``advance``) runs
the same steps, so the real timer later finds nothing to do.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.errors import NotFound
from tahsil.kernel.events import RequestContext, event_row
from tahsil.kernel.ids import new_id
from tahsil.kernel.principal import Principal
from tahsil.payments.payments import _transaction_row, load_payment, view
from tahsil.store import aws, dal

EXPIRY_WARNING = dt.timedelta(hours=24)
RETRIES = 8


def warning_lead() -> dt.timedelta:
    seconds = os.environ.get("EXPIRY_WARNING_SECONDS")
    return dt.timedelta(seconds=int(seconds)) if seconds else EXPIRY_WARNING


def _owner(item: dict[str, Any]) -> Principal:
    return Principal(merchant_id=item["merchant_id"], mode=item["mode"], key_id="", key_type="system",
                     api_version=item.get("api_version") or Principal.__dataclass_fields__["api_version"].default)


def _load(payment_id: str) -> dict[str, Any] | None:
    return dal.get(dal.payments_table(), f"PAY#{payment_id}", "PAY")


def warn(payment_id: str, ctx: RequestContext | None = None) -> bool:
    """Emit payment.authorization_expiring once, if the payment is still authorized and the time has come."""
    table = dal.payments_table()
    for _ in range(RETRIES):
        item = _load(payment_id)
        now = clock.now()
        if (item is None or item["status"] != "authorized" or item.get("expiring_notified_at")
                or clock.iso(now) < clock.iso(clock.parse(item["expires_at"]) - warning_lead())):
            return False
        version = item["version"]
        updated = {**item, "expiring_notified_at": clock.iso(now), "version": version + 1}
        actions = [
            dal.update_action(table, item["pk"], "PAY", "SET expiring_notified_at = :now, #version = :next",
                              condition="#status = :authorized AND attribute_not_exists(expiring_notified_at) AND #version = :seen",
                              names={"#status": "status", "#version": "version"},
                              vals=dal.values(now=clock.iso(now), next=version + 1, seen=version, authorized="authorized")),
            dal.put_action(table, event_row(_owner(item), ctx, type_="payment.authorization_expiring", obj=view(updated, now),
                                            sequence=version + 1, previous={}, now=now)),
        ]
        try:
            dal.transact(actions)
            return True
        except dal.ConditionFailed:
            continue
    return False


def expire(payment_id: str, ctx: RequestContext | None = None) -> bool:
    """authorized -> expired once expires_at has passed: the hold is released. True if this call did it."""
    table = dal.payments_table()
    for _ in range(RETRIES):
        item = _load(payment_id)
        now = clock.now()
        if item is None or item["status"] != "authorized" or clock.iso(now) < item["expires_at"]:
            return False
        version = item["version"]
        owner = _owner(item)
        txn_id = new_id("txn")
        updated = {**item, "status": "expired", "expired_at": clock.iso(now), "version": version + 1, "transaction_id": txn_id}
        txn = _transaction_row(owner, updated, txn_id=txn_id, type_="expiry", status="expired", amount=item["amount"],
                               now=now, response_code="00", response_message="Authorization expired; hold released")
        actions = [
            dal.update_action(table, item["pk"], "PAY",
                              "SET #status = :expired, expired_at = :now, #version = :next, transaction_id = :txn",
                              condition="#status = :authorized AND expires_at <= :now AND #version = :seen",
                              names={"#status": "status", "#version": "version"},
                              vals=dal.values(expired="expired", now=clock.iso(now), next=version + 1, seen=version,
                                              authorized="authorized", txn=txn_id)),
            dal.put_action(table, txn),
            dal.put_action(table, event_row(owner, ctx, type_="payment.expired", obj=view(updated, now), sequence=version + 1,
                                            previous={"status": "authorized"}, now=now)),
        ]
        try:
            dal.transact(actions)
            return True
        except dal.ConditionFailed:
            continue  # captured, voided or warned meanwhile: look again
    return False


MAX_EARLY = dt.timedelta(seconds=10)


def timer_step(state: dict[str, Any]) -> dict[str, Any]:
    """The state machine's task: ``{"action": "warn" | "expire", "kind": "payment", "id": ..., "at": ...}``.

    A Wait state may end a little before its timestamp (emulators truncate, clocks drift);
    a task that wakes up to MAX_EARLY early sleeps the rest, so its condition holds when it acts.
    """
    if state.get("at"):
        early = (clock.parse(state["at"]) - clock.now()).total_seconds()
        if 0 < early <= MAX_EARLY.total_seconds():
            time.sleep(early + 0.05)
    if state.get("kind", "payment") != "payment":
        from tahsil.payments import intents

        done = intents.expire(state["id"]) if state["action"] == "expire" else False
    elif state["action"] == "warn":
        done = warn(state["id"])
    else:
        done = expire(state["id"])
    return {**state, "done": bool(done)}


def start_timer(event: dict[str, Any]) -> str | None:
    """From the outbox: a new authorization (or payment intent) gets its expiry execution."""
    obj = json.loads(event["payload"])["data"]["object"] if "payload" in event else event["object"]
    if event["type"] == "payment.authorized" and obj.get("expires_at"):
        expires_at = clock.parse(obj["expires_at"])
        state = {"kind": "payment", "id": obj["id"], "expires_at": clock.iso(expires_at),
                 "warn_at": clock.iso(max(expires_at - warning_lead(), clock.parse(obj["created_at"])))}
    elif event["type"] == "payment_intent.created" and obj.get("expires_at"):
        state = {"kind": "payment_intent", "id": obj["id"], "expires_at": obj["expires_at"], "warn_at": None}
    else:
        return None
    client = aws.client("stepfunctions")
    try:
        client.start_execution(stateMachineArn=os.environ["EXPIRY_STATE_MACHINE_ARN"], name=f"expiry-{obj['id']}",
                               input=json.dumps(state))
    except client.exceptions.ExecutionAlreadyExists:
        pass  # a retried stream batch: the timer is already running
    return obj["id"]


def advance(p: Principal, payment_id: str, seconds: int) -> dict[str, Any]:
    """Test mode: move this payment's deadlines ``seconds`` closer and apply what falls due, in order."""
    if p.livemode:
        raise NotFound("no such endpoint in live mode", param="path")
    item = load_payment(p, payment_id)
    if item["status"] == "authorized" and item.get("expires_at"):
        shifted = clock.iso(clock.parse(item["expires_at"]) - dt.timedelta(seconds=seconds))
        try:
            dal.update(dal.payments_table(), item["pk"], "PAY", "SET expires_at = :shifted",
                       names={"#status": "status"}, vals=dal.values(shifted=shifted, authorized="authorized"),
                       condition="#status = :authorized")
        except dal.ConditionFailed:
            pass  # changed meanwhile (captured, voided, expired): nothing left to advance
        warn(payment_id)
        expire(payment_id)
    return view(load_payment(p, payment_id))
