"""The transition primitive every status change of a payment goes through, and the checks the modifications share.

``transition`` reads the payment, lets the caller decide a ``Step`` through the state machine
(``tahsil.payments.machine``), and writes it with one conditional ``TransactWriteItems``: the payment's
change (conditional on the version read), its event, its transaction row and counters, and the request's
idempotent answer. A lost race re-reads and decides again. Requests, workers, notifications and timers all
use it, in test and live mode alike (``tahsil.payments.lifecycle`` explains the phases around it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from tahsil.kernel import clock
from tahsil.kernel.errors import (
    AmountTooHigh,
    AuthorizationExpired,
    ConcurrentUpdate,
    Conflict,
    ModificationPending,
)
from tahsil.kernel.events import RequestContext, event_row
from tahsil.kernel.principal import LATEST_API_VERSION, Principal
from tahsil.payments import ledger, machine
from tahsil.payments.models import PaymentStatus
from tahsil.payments.payments import (
    SIMULATOR,
    effective_status,
    load_transaction,
    transaction_actions,
    transaction_move_actions,
    txn_partition,
    view,
)
from tahsil.store import dal

OPTIMISTIC_RETRIES = 12

# ---------------------------------------------------------------- the transition primitive


class Step(NamedTuple):
    """What one change writes: the payment's new fields (and attributes dropped), its event, its transaction."""

    fields: dict[str, Any]
    event: str | None
    remove: tuple[str, ...] = ()
    txn_put: dict[str, Any] | None = None  # a new transaction row (counted)
    txn_move: tuple[dict[str, Any], str, dict[str, Any]] | None = None  # (row, its new status, fields to set)
    condition: str = ""  # more conditions on the payment (``AND``-ed to the version's)
    vals: dict[str, Any] | None = None
    # ok(updated item) -> the answer bound with the change (``RequestContext.binding``), or None
    answer: Callable[[dict[str, Any], dt.datetime], list[dict[str, Any]]] | None = None
    more: tuple[dict[str, Any], ...] = ()  # more unconditional actions of the change (a processor reference's row)


class AlsoFailed(ConcurrentUpdate):
    """A condition of one of the caller's own actions (``also``) failed: nothing was written."""

    def __init__(self, index: int) -> None:
        super().__init__("the object this payment belongs to changed; retry")
        self.index = index


def system_principal(item: dict[str, Any]) -> Principal:
    """Who a worker or a notification acts as: the payment's own merchant and mode."""
    return Principal(merchant_id=item["merchant_id"], mode=item["mode"], key_id="", key_type="system",
                     api_version=item.get("api_version") or LATEST_API_VERSION)


def _names(fields: dict[str, Any]) -> dict[str, str]:
    return {f"#{k}": k for k in fields}


def transition(payment_id: str, decide: Callable[[dict[str, Any], dt.datetime], Step | None], *,
               ctx: RequestContext | None = None, also: Sequence[dict[str, Any]] = (),
               known: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
    """Apply ``decide``'s step to the payment, exactly once: (the payment as it now stands, whether it changed).

    ``decide(item, now)`` returns None when there is nothing to do (the transition happened already, or the
    state machine has no such edge); ``also`` is written only with a change, or alone when there is none (a
    notification's identity row). A lost race reads again and decides again; a condition of ``also`` that
    fails raises ``AlsoFailed``; too many lost races raise ``ConcurrentUpdate`` (retryable).
    """
    table = dal.payments_table()
    for _ in range(OPTIMISTIC_RETRIES):
        item, known = known or dal.get(table, f"PAY#{payment_id}", "PAY"), None
        if item is None:
            raise LookupError(payment_id)
        now = clock.now()
        step = decide(item, now)
        if step is None:
            if also:
                record_only(list(also))
            return item, False
        version = item["version"]
        updated = {**item, **step.fields, "version": version + 1}
        for name in step.remove:
            updated.pop(name, None)
        p = system_principal(item) if ctx is None else Principal(
            merchant_id=item["merchant_id"], mode=item["mode"], key_id="", key_type="system",
            api_version=item.get("api_version") or LATEST_API_VERSION)
        before = view(item, now)
        sets = ", ".join(f"#{k} = :{k}" for k in step.fields)
        expression = f"SET {sets}, #version = :next" + (f" REMOVE {', '.join(step.remove)}" if step.remove else "")
        condition = "#version = :seen" + (f" AND {step.condition}" if step.condition else "")
        names = _names(step.fields) | {"#version": "version"} | ({"#status": "status"} if "#status" in condition else {})
        actions = [dal.update_action(table, item["pk"], item["sk"], expression, condition=condition, names=names,
                                     vals=dal.values(**step.fields, next=version + 1, seen=version) | (step.vals or {}))]
        if step.event:
            actions.append(dal.put_action(table, event_row(
                p, ctx, type_=step.event, obj=view(updated, now), sequence=version + 1,
                previous={k: before[k] for k in ("status", *step.fields) if k in before and before[k] != view(updated, now).get(k)},
                now=now)))
        if step.txn_put is not None:
            actions += transaction_actions(table, p, step.txn_put)
        if step.txn_move is not None:
            row, status, fields = step.txn_move
            actions += transaction_move_actions(table, row, status, fields)
        actions += list(step.more) + ledger.movements(item, updated, now)  # the money it moved, balanced
        base = len(actions)
        actions += list(also)
        bound = len(actions)
        if step.answer is not None:
            actions += step.answer(updated, now)
        try:
            dal.transact(actions)
        except dal.ConditionFailed as exc:
            if exc.index is not None and base <= exc.index < bound:
                raise AlsoFailed(exc.index - base) from exc
            if exc.index is not None and exc.index >= bound:
                raise ConcurrentUpdate("this request was answered by another attempt; retry") from exc
            continue
        if step.answer is not None and ctx is not None:
            ctx.bound()
        return updated, True
    raise ConcurrentUpdate("the payment is being changed by other requests; retry")


def record_only(actions: list[dict[str, Any]]) -> None:
    try:
        dal.transact(actions)
    except dal.ConditionFailed:
        pass  # already recorded


# ---------------------------------------------------------------- which connector


def psp_rows(item: dict[str, Any], psp: str | None, txn_id: str) -> tuple[dict[str, Any], ...]:
    """processor reference -> Tahsil payment and transaction, for notifications that carry only the former
    (a processor's payments only: the simulator sends no notifications)."""
    if not psp or not item.get("connector") or item["connector"] == SIMULATOR.name:
        return ()
    return (dal.put_action(dal.payments_table(), {
        "pk": f"PSP#{item['connector']}#{psp}", "sk": "PSP", "payment_id": item["id"], "transaction_id": txn_id,
        "merchant_id": item["merchant_id"], "mode": item["mode"]}, condition=None),)


# ---------------------------------------------------------------- checks shared by the modifications

_REFUSALS: dict[tuple[str, str], str] = {
    ("capture", "captured"): "payment already captured",
    ("capture", "partially_refunded"): "payment already captured",
    ("capture", "refunded"): "payment already captured",
    ("capture", "voided"): "cannot capture a voided payment",
    ("void", "captured"): "cannot void captured payment (use refund instead)",
    ("void", "partially_refunded"): "cannot void captured payment (use refund instead)",
    ("void", "refunded"): "cannot void captured payment (use refund instead)",
    ("void", "voided"): "payment already voided",
    ("refund", "authorized"): "can only refund captured payments",
    ("refund", "voided"): "can only refund captured payments",
    ("refund", "refunded"): "payment already fully refunded",
}


def require(item: dict[str, Any], kind: str, now: dt.datetime) -> None:
    """409 (or 410) unless the machine lets the merchant ask for ``kind`` in the payment's status."""
    pending = item.get("pending_action")
    if pending:
        raise ModificationPending(f"a {pending['type']} of this payment is waiting for the processor's confirmation; "
                                  "retry once it settles (the webhook tells you)", status=item["status"])
    status = effective_status(item, now)
    if status in machine.REQUESTS[kind]:
        return
    if status == PaymentStatus.EXPIRED:
        raise AuthorizationExpired("authorization expired (valid for 7 days)")
    if status == PaymentStatus.FAILED:
        raise Conflict(f"payment failed; there is nothing to {kind}", status=status)
    if status == PaymentStatus.PROCESSING:
        raise ModificationPending("the processor has not answered this payment's authorization yet; retry once it "
                                  "settles (the webhook tells you)", status=status)
    raise Conflict(_REFUSALS.get((kind, status), f"cannot {kind} a payment that is {status}"), status=status)


def capture_amount(requested: int | None) -> Callable[[dict[str, Any]], int]:
    def amount(item: dict[str, Any]) -> int:
        value = requested if requested is not None else item["amount"]
        if value > item["amount"]:
            raise AmountTooHigh("capture amount exceeds authorized amount", param="amount",
                                authorized_amount=item["amount"])
        return value
    return amount


def refund_amount(requested: int | None) -> Callable[[dict[str, Any]], int]:
    def amount(item: dict[str, Any]) -> int:
        available = item["captured_amount"] - item["refunded_amount"]
        value = requested if requested is not None else available
        if value > available:
            raise AmountTooHigh("refund amount exceeds available amount", param="amount", available_amount=available)
        return value
    return amount


def txn_key_of(item: dict[str, Any], txn_id: str) -> dict[str, Any]:
    """A payment's transaction row (its merchant's partition, or its own key in the older layout)."""
    owner = f"{item['merchant_id']}#{item['mode']}"
    return load_transaction(owner, txn_id) or {"pk": txn_partition(owner), "sk": txn_id, "id": txn_id,
                                                "status": "pending"}
