"""Capture, void, refund and expiry: one path for test and live (``tahsil.payments.lifecycle`` has the phases).

- The simulator answers inside the request: the payment goes straight from ``authorized`` to ``captured``
  (etc.) in one transaction with its transaction row, event and idempotent answer.
- A processor over the network: phase 1 writes ``<kind>_pending`` with ``pending_action`` and a ``pending``
  transaction (and, with an Idempotency-Key, a marker naming it, so the same-key retry finds it); the
  call follows; the processor's acknowledgement (Adyen: ``received``) is committed with the answer, and its
  notification settles the modification (``settle``), whenever it comes, even after Tahsil recorded a
  different outcome: the processor's word wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from tahsil.connectors.base import Operation, Outcome
from tahsil.kernel import clock
from tahsil.kernel.errors import PaymentProcessing, ProcessorRefused
from tahsil.kernel.events import RequestContext
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import logger, metrics
from tahsil.payments import lifecycle, machine
from tahsil.payments.lifecycle import call, connector_of, derived_id, schedule_recovery
from tahsil.payments.models import CaptureRequest, PaymentStatus, RefundRequest, VoidRequest
from tahsil.payments.payments import load_payment, load_transaction, new_txn_id, transaction_row, view
from tahsil.payments.transitions import (
    Step,
    capture_amount,
    psp_rows,
    refund_amount,
    require,
    transition,
    txn_key_of,
)
from tahsil.store import dal

PENDING_STATUS = {"capture": PaymentStatus.CAPTURE_PENDING, "void": PaymentStatus.VOID_PENDING,
                  "refund": PaymentStatus.REFUND_PENDING, "expire": PaymentStatus.VOID_PENDING}
TXN_TYPE = {"capture": "capture", "void": "void", "refund": "refund", "expire": "expiry"}
TXN_DONE = {"capture": "captured", "void": "voided", "refund": "refunded", "expire": "expired"}
AT_PROCESSOR = {"capture": "capture", "void": "void", "refund": "refund", "expire": "void"}  # expiry is a cancel there


def capture(p: Principal, payment_id: str, req: CaptureRequest, ctx: RequestContext) -> dict[str, Any]:
    return modify(p, payment_id, "capture", capture_amount(req.amount), None, ctx, requested=str(req.amount))


def void(p: Principal, payment_id: str, req: VoidRequest, ctx: RequestContext) -> dict[str, Any]:
    return modify(p, payment_id, "void", lambda item: item["amount"], req.reason, ctx)


def refund(p: Principal, payment_id: str, req: RefundRequest, ctx: RequestContext) -> dict[str, Any]:
    return modify(p, payment_id, "refund", refund_amount(req.amount), req.reason, ctx, requested=str(req.amount))


def _done_fields(item: dict[str, Any], kind: str, amount: int, reason: str | None, now: dt.datetime) -> dict[str, Any]:
    """The payment's fields once the processor confirmed ``kind``."""
    if kind == "capture":
        return {"status": PaymentStatus.CAPTURED, "captured_amount": amount, "captured_at": clock.iso(now)}
    if kind == "void":
        return {"status": PaymentStatus.VOIDED, "voided_at": clock.iso(now), "void_reason": reason}
    if kind == "expire":
        return {"status": PaymentStatus.EXPIRED, "expired_at": clock.iso(now)}
    total = item["refunded_amount"] + amount
    return {"status": machine.refund_status(item["captured_amount"], total), "refunded_amount": total,
            "refunded_at": clock.iso(now), "refund_reason": reason}


def _expiry_condition(kind: str, now: dt.datetime) -> tuple[str, dict[str, Any]]:
    """A capture or void needs a live authorization; the timer's expiry needs it to have expired."""
    if kind in ("capture", "void"):
        return "#status = :from AND expires_at > :now", dal.values(**{"from": "authorized", "now": clock.iso(now)})
    if kind == "expire":
        return "#status = :from AND expires_at <= :now", dal.values(**{"from": "authorized", "now": clock.iso(now)})
    return "", {}  # a refund: the version read already pins the status it was checked against


def modify(p: Principal, payment_id: str, kind: str, amount_of: Callable[[dict[str, Any]], int], reason: str | None,
           ctx: RequestContext, *, requested: str = "") -> dict[str, Any]:
    """A merchant's capture, void or refund, through the payment's own connector."""
    item = load_payment(p, payment_id)
    connector = connector_of(item)
    if not connector.remote:
        return view(_in_request(item, kind, amount_of, reason, ctx))
    request = derived_id("txn", p, ctx, "modify", payment_id, kind, requested) if ctx.idempotency_key else None
    if request:
        earlier_id = requested_before(p, request, payment_id)
        if earlier_id is not None:
            pending = item.get("pending_action")
            if pending and pending["transaction_id"] == earlier_id:
                return resume(item, ctx)  # this very request, retried: ask the processor again
            earlier = load_transaction(p.owner, earlier_id)
            if earlier is not None:
                if earlier["status"] == "failed":
                    raise ProcessorRefused(f"the processor refused the {kind}: {earlier.get('processor_reason') or ''}",
                                           status=item["status"])
                return view(item)  # settled since: the payment as it stands
    item = request_at_processor(item, kind, amount_of, reason, ctx, marker=request)
    return send(item, ctx)


def _in_request(item: dict[str, Any], kind: str, amount_of: Callable[[dict[str, Any]], int], reason: str | None,
                ctx: RequestContext | None) -> dict[str, Any]:
    """The simulator's modification: checked, answered and committed in one transaction (no recovery point)."""
    connector = connector_of(item)

    def decide(item: dict[str, Any], now: dt.datetime) -> Step | None:
        if kind == "expire":
            if item["status"] != PaymentStatus.AUTHORIZED or clock.iso(now) < item["expires_at"]:
                return None
        else:
            require(item, kind, now)
        amount = amount_of(item)
        outcome = connector.execute(Operation(AT_PROCESSOR[kind], new_txn_id(now), amount, item["currency"], item["id"]),
                                    timeout=0)
        to = machine.next_status(item["status"], f"{kind}.{'approved' if outcome.status == 'approved' else 'failed'}")
        if to is None:
            return None
        fields = _done_fields(item, kind, amount, reason, now)
        txn_id = new_txn_id(now)
        fields["transaction_id"] = txn_id
        message = "Authorization expired; hold released" if kind == "expire" else outcome.message
        txn = transaction_row(item, txn_id=txn_id, type_=TXN_TYPE[kind], status=TXN_DONE[kind], amount=amount, now=now,
                              response_code=outcome.code, response_message=message,
                              auth_code=item.get("auth_code") if kind == "capture" else None, reason=reason)
        condition, vals = _expiry_condition(kind, now)
        return Step(fields, f"payment.{TXN_DONE[kind]}", txn_put=txn, condition=condition, vals=vals,
                    answer=(lambda updated, now: ctx.binding(view(updated, now))) if ctx and ctx.answer else None)

    lifecycle.checkpoint("commit", item["id"])
    updated, _ = transition(item["id"], decide, ctx=ctx, known=item)
    lifecycle.checkpoint("answer", item["id"])
    return updated


def request_at_processor(item: dict[str, Any], kind: str, amount_of: Callable[[dict[str, Any]], int],
                         reason: str | None, ctx: RequestContext | None, *, marker: str | None = None) -> dict[str, Any]:
    """Phase 1 at a processor: ``<kind>_pending`` with its ``pending`` transaction (the recovery point)."""

    def decide(item: dict[str, Any], now: dt.datetime) -> Step | None:
        if kind == "expire":
            if item["status"] != PaymentStatus.AUTHORIZED or clock.iso(now) < item["expires_at"] or item.get("pending_action"):
                return None
        else:
            require(item, kind, now)
        amount = amount_of(item)
        txn_id = new_txn_id(now)
        pending = {"type": kind, "transaction_id": txn_id, "amount": amount, "reason": reason, "from": item["status"],
                   "requested_at": clock.iso(now), "acknowledged": False}
        to = machine.next_status(item["status"], f"{kind}.requested")
        assert to is not None
        txn = transaction_row(item, txn_id=txn_id, type_=TXN_TYPE[kind], status="pending", amount=amount, now=now,
                              response_code="", response_message="Pending", reason=reason)
        condition, vals = _expiry_condition(kind, now)
        schedule_recovery(item["id"], txn_id)  # before the recovery point: a crash after it leaves a worker
        return Step({"status": to, "pending_action": pending}, None, txn_put=txn, condition=condition, vals=vals,
                    more=(_marker(item, marker, txn_id, now),) if marker else ())

    lifecycle.checkpoint("recovery_point", item["id"])
    updated, _ = transition(item["id"], decide, known=item)
    return updated


def _marker(item: dict[str, Any], request: str, txn_id: str, now: dt.datetime) -> dict[str, Any]:
    """``TXR#<derived id>``: names the transaction a keyed request made, so its same-key retry finds it."""
    return dal.put_action(dal.payments_table(), {
        "pk": f"TXR#{request}", "sk": "TXR", "merchant_id": item["merchant_id"], "mode": item["mode"],
        "payment_id": item["id"], "transaction_id": txn_id, "ttl": int((now + dt.timedelta(days=30)).timestamp())},
        condition=None)


def requested_before(p: Principal, request: str, payment_id: str) -> str | None:
    """The transaction an earlier attempt of this keyed request made, if any (one BatchGetItem): its marker,
    or, for a request first made before markers, the transaction row it wrote under the derived id itself."""
    table = dal.payments_table()
    found = dal.get_many(table, [(f"TXR#{request}", "TXR"), (f"TXN#{request}", "TXN")])
    marker, legacy = found.get((f"TXR#{request}", "TXR")), found.get((f"TXN#{request}", "TXN"))
    if marker is not None and marker["merchant_id"] == p.merchant_id and marker["payment_id"] == payment_id:
        return str(marker["transaction_id"])
    if legacy is not None and legacy["merchant_id"] == p.merchant_id and legacy["payment_id"] == payment_id:
        return request
    return None


def _operation(item: dict[str, Any]) -> Operation:
    pending = item["pending_action"]
    return Operation(AT_PROCESSOR[pending["type"]], pending["transaction_id"], pending["amount"], item["currency"],
                     item["id"], payment_reference=item.get("processor_reference"))


def send(item: dict[str, Any], ctx: RequestContext | None) -> dict[str, Any]:
    """Phase 2 and 3: ask the processor, commit its answer (an acknowledgement, or a final word)."""
    pending = item["pending_action"]
    lifecycle.checkpoint("call", pending["transaction_id"])
    outcome = call(connector_of(item), _operation(item))
    if outcome is None:
        raise PaymentProcessing(view(item))
    lifecycle.checkpoint("commit", pending["transaction_id"])
    if outcome.status == "pending":
        acked = acknowledge(item, outcome, ctx)
        lifecycle.checkpoint("answer", pending["transaction_id"])
        return view(acked)
    after = settle(item["id"], pending["transaction_id"], outcome, ctx=ctx)
    lifecycle.checkpoint("answer", pending["transaction_id"])
    if outcome.status == "declined":
        raise _refused(pending["type"], outcome, after)
    return view(after)


def _refused(kind: str, outcome: Outcome, after: dict[str, Any]) -> ProcessorRefused:
    return ProcessorRefused(f"the processor refused the {kind}: {outcome.processor_reason or outcome.message}",
                            status=after["status"])


def resume(item: dict[str, Any], ctx: RequestContext | None) -> dict[str, Any]:
    """A modification still pending: acknowledged already (answer as it stands), else ask again."""
    if item["pending_action"].get("acknowledged"):
        return view(item)
    return send(item, ctx)


def acknowledge(item: dict[str, Any], outcome: Outcome, ctx: RequestContext | None) -> dict[str, Any]:
    """The processor acknowledged the modification: its reference is recorded with the answer; the notification
    settles it. A notification that settled it first leaves nothing to acknowledge."""
    txn_id = item["pending_action"]["transaction_id"]

    def decide(item: dict[str, Any], now: dt.datetime) -> Step | None:
        pending = item.get("pending_action")
        if not pending or pending["transaction_id"] != txn_id or pending.get("acknowledged"):
            return None
        acked = {**pending, "acknowledged": True, "processor_reference": outcome.processor_reference}
        row = txn_key_of(item, txn_id)
        return Step({"pending_action": acked}, None, txn_move=(row, "pending", {"processor_reference": outcome.processor_reference}),
                    more=psp_rows(item, outcome.processor_reference, txn_id),
                    answer=(lambda updated, now: ctx.binding(view(updated, now))) if ctx and ctx.answer else None)

    updated, _ = transition(item["id"], decide, ctx=ctx, known=item)
    return updated


def settle(payment_id: str, txn_id: str, outcome: Outcome, *, ctx: RequestContext | None = None,
           also: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The processor's final word on a modification (its answer or its notification), applied to the state it
    finds: a pending one settles (or goes back where it was); a confirmed capture or refund that the processor
    then reports failed is taken back, with its event, and the payment is flagged for review."""
    ok = outcome.status == "approved"

    def decide(item: dict[str, Any], now: dt.datetime) -> Step | None:
        pending = item.get("pending_action")
        if pending and pending["transaction_id"] == txn_id:
            return _settle_pending(item, pending, ok, outcome, now, ctx)
        return None if ok else _take_back(item, txn_id, outcome, now)

    updated, _ = transition(payment_id, decide, ctx=ctx, also=also)
    return updated


def _settle_pending(item: dict[str, Any], pending: dict[str, Any], ok: bool, outcome: Outcome, now: dt.datetime,
                    ctx: RequestContext | None) -> Step | None:
    kind, amount, txn_id = pending["type"], pending["amount"], pending["transaction_id"]
    to = machine.next_status(item["status"], f"{kind}.{'approved' if ok else 'failed'}")
    if to is None:
        return None
    if ok:
        fields = _done_fields(item, kind, amount, pending.get("reason"), now)
        event, txn_status = f"payment.{TXN_DONE[kind]}", TXN_DONE[kind]
    elif kind == "expire":  # the hold could not be released at the processor: expired here, flagged for ops
        fields = {"status": PaymentStatus.EXPIRED, "expired_at": clock.iso(now),
                  "review": {"reason": "the processor refused to cancel the expired authorization", "at": clock.iso(now)}}
        event, txn_status = "payment.expired", "failed"
        metrics.add_metric(name="PaymentContradicted", unit="Count", value=1)
    else:
        fields = {"status": pending["from"]}
        event, txn_status = f"payment.{kind}_failed", "failed"
    fields["transaction_id"] = txn_id
    row = txn_key_of(item, txn_id)
    refusal = None if ok else _refused(kind, outcome, {**item, **fields})
    bind = None
    if ctx is not None and ctx.answer is not None:
        bind = (lambda updated, now: ctx.binding(view(updated, now))) if ok else \
            (lambda updated, now: ctx.binding(error=refusal))
    return Step(fields, event, remove=("pending_action",),
                txn_move=(row, txn_status, {"response_code": outcome.code, "response_message": outcome.message,
                                            "processor_reason": outcome.processor_reason}),
                condition="pending_action.transaction_id = :txn", vals=dal.values(txn=txn_id), answer=bind)


def _take_back(item: dict[str, Any], txn_id: str, outcome: Outcome, now: dt.datetime) -> Step | None:
    """CAPTURE_FAILED after CAPTURE, REFUND_FAILED after REFUND: the money did not move after all."""
    row = load_transaction(f"{item['merchant_id']}#{item['mode']}", txn_id)
    if row is None or row["status"] not in ("captured", "refunded"):
        return None
    review = {"reason": f"the processor reported the {row['type']} {txn_id} failed after confirming it",
              "at": clock.iso(now)}
    if row["type"] == "refund":
        refunded = max(0, item["refunded_amount"] - row["amount"])
        to = machine.refund_status(item["captured_amount"], refunded)
        if machine.next_status(item["status"], "refund.failed") is None:
            return None
        fields: dict[str, Any] = {"status": to, "refunded_amount": refunded, "review": review}
        event = "payment.refund_failed"
    else:
        if item["refunded_amount"] or machine.next_status(item["status"], "capture.failed") is None:
            logger.error("capture failure after refunds: left for review", extra={"payment_id": item["id"]})
            return Step({"review": review}, None)
        fields = {"status": PaymentStatus.AUTHORIZED, "captured_amount": 0, "captured_at": None, "review": review}
        event = "payment.capture_failed"
    metrics.add_metric(name="PaymentContradicted", unit="Count", value=1)
    return Step(fields, event, txn_move=(row, "failed", {"response_code": outcome.code, "response_message": outcome.message,
                                                         "processor_reason": outcome.processor_reason}))


# ---------------------------------------------------------------- the expiry timer


def expire(payment_id: str, ctx: RequestContext | None = None) -> bool:
    """authorized -> expired once expires_at has passed: the hold is released (at the processor, by a cancel,
    settled by its notification). True if this call expired it or asked the processor to."""
    item = dal.get(dal.payments_table(), f"PAY#{payment_id}", "PAY")
    if item is None or item["status"] != PaymentStatus.AUTHORIZED or clock.iso(clock.now()) < (item.get("expires_at") or "~"):
        return False
    connector = connector_of(item)
    if not connector.remote:
        before = item["version"]
        after = _in_request(item, "expire", lambda item: item["amount"], None, ctx)
        return bool(after["version"] != before and after["status"] == PaymentStatus.EXPIRED)
    updated = request_at_processor(item, "expire", lambda item: item["amount"], None, ctx)
    if not updated.get("pending_action") or updated["pending_action"]["type"] != "expire":
        return False
    try:
        send(updated, ctx)
    except PaymentProcessing:
        pass  # unknown for now: the recovery worker asks again
    except ProcessorRefused:
        pass  # recorded: expired, flagged for review
    return True
