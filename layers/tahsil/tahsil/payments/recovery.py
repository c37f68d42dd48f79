"""Completing what requests left behind: the recovery worker, and the processor's notifications.

- **The recovery worker** (``recover``) gets a delayed message for every recovery point. It completes,
  never starts: a modification still unsent or unanswered is asked again with the same processor
  idempotency key; an authorization is never re-sent (the CVC is gone and the shopper is not there) —
  its outcome comes from the processor's AUTHORISATION notification or a same-key retry that carries the
  card. The worker re-queues itself with backoff (``next_delay``) until the operation settles or
  ``RECOVERY_DEADLINE_SECONDS`` pass; an authorization still unanswered then fails with decline code
  ``processor_unreachable`` (metric ``PaymentUnresolved``, alarmed), and a late AUTHORISATION still wins.
- **Notifications** (``apply_notification``): every item of a batch whose HMAC verifies is applied to the
  state it finds, exactly once (an identity row per notification rides in the same transaction), or
  recorded as ignored with its reason (metric ``NotificationIgnored``); only a bad signature rejects a batch.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tahsil.connectors.base import Outcome, OutcomeUnknown
from tahsil.kernel import clock
from tahsil.kernel.errors import PaymentProcessing, ProcessorRefused, TahsilError, Unauthenticated
from tahsil.kernel.telemetry import logger, metrics
from tahsil.payments import lifecycle, modifications, transitions
from tahsil.payments.models import PaymentStatus
from tahsil.payments.payments import load_transaction
from tahsil.store import dal

if TYPE_CHECKING:
    from tahsil.connectors.adyen import Notification

SETTLE_EVENTS = {"CAPTURE": "capture", "CAPTURE_FAILED": "capture", "CANCELLATION": "void", "REFUND": "refund",
                 "REFUND_FAILED": "refund", "CANCEL_OR_REFUND": "void"}
NOTIFICATION_DAYS = 400  # kept beyond any dispute window: the processor's word behind every change


def next_delay(attempt: int) -> int:
    """Seconds before the worker asks again: the recovery delay, doubling, at most SQS's 15 minutes."""
    return min(900, max(1, lifecycle.recovery_delay()) * (2 ** min(attempt, 10)))


def _overdue(started: str | None) -> bool:
    if not started:
        return False
    return clock.now() - clock.parse(started) >= dt.timedelta(seconds=lifecycle.recovery_deadline())


def recover(payment_id: str, reference: str, attempt: int = 0) -> str:
    """Finish what a request left between its phases; returns what it did (re-queuing itself while waiting)."""
    item = dal.get(dal.payments_table(), f"PAY#{payment_id}", "PAY")
    if item is None:
        return "absent"  # the recovery point never landed: nothing was sent to the processor
    if item["status"] == PaymentStatus.PROCESSING and reference == payment_id:
        if _overdue((item.get("attempt") or {}).get("started_at")):
            after = lifecycle.commit_authorization(
                payment_id, Outcome("declined", "96", "Processing error", None,
                                    "no answer from the processor before the recovery deadline"),
                trigger="authorize.unreachable")
            if after.get("decline_code") == lifecycle.DECLINE_UNREACHABLE:
                metrics.add_metric(name="PaymentUnresolved", unit="Count", value=1)
                logger.error("authorization unanswered past the deadline: failed as processor_unreachable",
                             extra={"payment_id": payment_id})
            return "unreachable"
        lifecycle.schedule_recovery(payment_id, reference, attempt=attempt + 1, delay=next_delay(attempt))
        return "waiting"  # for the AUTHORISATION notification, or a same-key retry with the card
    pending = item.get("pending_action")
    if not pending or pending["transaction_id"] != reference:
        return "settled"
    if pending.get("acknowledged"):
        if _overdue(pending.get("requested_at")):
            metrics.add_metric(name="ModificationUnsettled", unit="Count", value=1)
            logger.error("modification acknowledged but not settled past the deadline",
                         extra={"payment_id": payment_id, "reference": reference})
            return "unsettled"
        lifecycle.schedule_recovery(payment_id, reference, attempt=attempt + 1, delay=next_delay(attempt))
        return "waiting"
    try:
        modifications.send(item, None)
    except PaymentProcessing:
        if _overdue(pending.get("requested_at")):
            metrics.add_metric(name="ModificationUnsettled", unit="Count", value=1)
            logger.error("modification unanswered past the deadline", extra={"payment_id": payment_id})
        lifecycle.schedule_recovery(payment_id, reference, attempt=attempt + 1, delay=next_delay(attempt))
        return "waiting"
    except ProcessorRefused:
        return "refused"
    except OutcomeUnknown:
        lifecycle.schedule_recovery(payment_id, reference, attempt=attempt + 1, delay=next_delay(attempt))
        return "waiting"
    return "acknowledged"


# ---------------------------------------------------------------- processor notifications


def receive(merchant_id: str, body: str | None) -> str:
    """POST /connectors/adyen/{merchant_id}/notifications: apply the batch, log the outcome, and answer what
    Adyen expects (``[accepted]``, duplicates included). A refusal (bad signature: 401) is logged and raised."""
    try:
        changed = apply_notification(merchant_id, body or "")
    except TahsilError as exc:
        logger.warning("adyen notification refused", extra={"merchant_id": merchant_id[:40], "code": exc.code})
        raise
    logger.info("adyen notification accepted", extra={"merchant_id": merchant_id, "changed": changed})
    return "[accepted]"


def apply_notification(merchant_id: str, body: str) -> dict[str, int]:
    """An Adyen notification batch for a merchant's live connector: verify every item, then apply each.

    Returns counts (``applied``, ``unchanged``, ``ignored``). Raises Unauthenticated only when the batch is not
    an Adyen notification or a signature does not verify (Adyen then retries it; nothing was applied)."""
    settings = lifecycle._connectors()
    row = settings.load(merchant_id, "live")
    if row is None or row.get("connector") != "adyen":
        raise Unauthenticated("no Adyen connector is configured for this merchant", param="merchant_id")
    from tahsil.connectors.adyen import InvalidNotification, parse_notifications

    try:
        items = parse_notifications(body, settings.credentials(row)["hmac_key"])
    except InvalidNotification as exc:
        raise Unauthenticated(f"notification rejected: {exc}") from None
    counts = {"applied": 0, "unchanged": 0, "ignored": 0}
    for note in items:
        if note.merchant_account != row["merchant_account"]:
            _ignore(merchant_id, note, "notification for another merchant account")
            counts["ignored"] += 1
            continue
        result = _apply_one(merchant_id, note)
        counts[result] += 1
    return counts


def _identity_row(merchant_id: str, note: Notification, payment_id: str | None,
                  ignored: str | None = None) -> dict[str, Any]:
    now = clock.now()
    row = {"pk": f"NTF#adyen#{merchant_id}#{note.identity}", "sk": "NTF", "merchant_id": merchant_id,
           "received_at": clock.iso(now), "event_code": note.event_code, "success": note.success,
           "psp_reference": note.psp_reference, "merchant_reference": note.merchant_reference[:80],
           "amount": note.amount, "currency": note.currency, "reason": (note.reason or "")[:200] or None,
           "ttl": int((now + dt.timedelta(days=NOTIFICATION_DAYS)).timestamp())}
    if payment_id:
        row["payment_id"] = payment_id
    if ignored:
        row["ignored"] = ignored
    return row


def _ignore(merchant_id: str, note: Notification, why: str) -> None:
    metrics.add_metric(name="NotificationIgnored", unit="Count", value=1)
    logger.warning("adyen notification ignored", extra={"why": why, "event_code": note.event_code,
                                                        "reference": note.merchant_reference[:64]})
    transitions.record_only([dal.put_action(dal.payments_table(), _identity_row(merchant_id, note, None, why))])


def _apply_one(merchant_id: str, note: Notification) -> str:
    table = dal.payments_table()
    key = f"NTF#adyen#{merchant_id}#{note.identity}"
    if dal.get(table, key, "NTF") is not None:
        return "unchanged"  # a duplicate: applied (or recorded) before
    ref = note.merchant_reference
    if note.event_code == "AUTHORISATION":
        item = dal.get(table, f"PAY#{ref}", "PAY") if ref.startswith("pay_") else None
        if item is None or item["merchant_id"] != merchant_id or item["mode"] != "live":
            _ignore(merchant_id, note, "AUTHORISATION for an unknown reference")
            return "ignored"
        before = item["version"]
        identity = dal.put_action(table, _identity_row(merchant_id, note, item["id"]))
        after = lifecycle.commit_authorization(item["id"], note.outcome(), also=[identity], known=item)
        return "applied" if after["version"] != before else "unchanged"
    kind = SETTLE_EVENTS.get(note.event_code)
    if kind is None:  # REPORT_AVAILABLE, CHARGEBACK...: not settled here yet (docs/connectors.md)
        _ignore(merchant_id, note, f"{note.event_code} is not applied by Tahsil")
        return "ignored"
    txn_id = ref if ref.startswith("txn_") else None
    if txn_id is None:  # fall back on the modification's pspReference
        link = dal.get(table, f"PSP#adyen#{note.psp_reference}", "PSP")
        txn_id = link["transaction_id"] if link else None
    txn = load_transaction(f"{merchant_id}#live", txn_id) if txn_id else None
    if txn is None:
        _ignore(merchant_id, note, "modification notification for an unknown reference")
        return "ignored"
    identity = dal.put_action(table, _identity_row(merchant_id, note, txn["payment_id"]))
    current = dal.get(table, f"PAY#{txn['payment_id']}", "PAY")
    before = current["version"] if current else None
    after = modifications.settle(txn["payment_id"], txn["id"], note.outcome(), also=[identity])
    return "applied" if after["version"] != before else "unchanged"
