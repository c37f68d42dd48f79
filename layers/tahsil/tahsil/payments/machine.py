"""The payment's and the refund's state machines, written down once; test and live run both through them.

Every status change of a payment is one row of ``PAYMENT``: (status it starts from, trigger) -> status it
ends in. A trigger is what happened: the merchant asked (``capture``), the processor answered in the
request (``capture.approved``), a notification said so (``capture.failed``), or a timer fired
(``expire``). ``tahsil.payments.lifecycle`` asks ``next_status`` before every conditional write and
refuses (409) or ignores (a notification that changes nothing) what the table does not allow, so no
code path can move a payment along an edge that is not here. docs/connectors.md draws the same table.

A refund is a transaction row of its payment: ``REFUND`` says how its own status moves, including the
processor taking back a refund it had confirmed (REFUND_FAILED after REFUND).
"""

from __future__ import annotations

from tahsil.payments.models import PaymentStatus as S

NEW = "new"  # not written yet

# (from, trigger) -> to. Triggers:
#   authorize.approved / sale.approved / authorize.declined: the processor's answer to an authorization
#   authorize.unreachable: no answer from the processor before the recovery deadline (decline_code processor_unreachable)
#   authorize.pending: the processor took it and answers later (live only; the recovery point stays)
#   authorize.requires_action: the issuer asks the shopper to authenticate (3-D Secure 2 challenge)
#   authorize.abandoned: nobody came back from the challenge within an hour (the timer)
#   <kind>: the merchant (or the expiry timer, kind ``expire``) asks for a modification; the processor then
#     answers in the request (simulator: <kind>.approved) or acknowledges it (<kind>.requested -> *_pending)
#   <kind>.approved / <kind>.failed: the processor's final word on a modification, in the answer or a notification
PAYMENT: dict[tuple[str, str], str] = {
    # authorization and sale
    (NEW, "authorize.approved"): S.AUTHORIZED,
    (NEW, "sale.approved"): S.CAPTURED,
    (NEW, "authorize.declined"): S.FAILED,
    (NEW, "authorize.pending"): S.PROCESSING,
    # 3-D Secure 2: the shopper authenticates with their bank, then the authorization completes
    (NEW, "authorize.requires_action"): S.REQUIRES_ACTION,
    (S.REQUIRES_ACTION, "authorize.approved"): S.AUTHORIZED,
    (S.REQUIRES_ACTION, "sale.approved"): S.CAPTURED,
    (S.REQUIRES_ACTION, "authorize.declined"): S.FAILED,
    (S.REQUIRES_ACTION, "authorize.abandoned"): S.FAILED,
    (S.PROCESSING, "authorize.approved"): S.AUTHORIZED,
    (S.PROCESSING, "sale.approved"): S.CAPTURED,
    (S.PROCESSING, "authorize.declined"): S.FAILED,
    (S.PROCESSING, "authorize.unreachable"): S.FAILED,
    # the processor's word after Tahsil decided: a late AUTHORISATION wins (the payment is flagged for ops)
    (S.FAILED, "authorize.approved"): S.AUTHORIZED,
    (S.FAILED, "sale.approved"): S.CAPTURED,
    (S.AUTHORIZED, "authorize.declined"): S.FAILED,
    # capture
    (S.AUTHORIZED, "capture.requested"): S.CAPTURE_PENDING,
    (S.AUTHORIZED, "capture.approved"): S.CAPTURED,
    (S.CAPTURE_PENDING, "capture.approved"): S.CAPTURED,
    (S.CAPTURE_PENDING, "capture.failed"): S.AUTHORIZED,
    (S.CAPTURED, "capture.failed"): S.AUTHORIZED,  # CAPTURE_FAILED after CAPTURE: the money was not taken
    # void (cancel), asked by the merchant
    (S.AUTHORIZED, "void.requested"): S.VOID_PENDING,
    (S.AUTHORIZED, "void.approved"): S.VOIDED,  # also an unsolicited CANCELLATION
    (S.VOID_PENDING, "void.approved"): S.VOIDED,
    (S.VOID_PENDING, "void.failed"): S.AUTHORIZED,
    # expiry: the timer cancels an authorization nobody captured; at a processor, by a cancel
    (S.AUTHORIZED, "expire.requested"): S.VOID_PENDING,
    (S.AUTHORIZED, "expire.approved"): S.EXPIRED,
    (S.VOID_PENDING, "expire.approved"): S.EXPIRED,
    (S.VOID_PENDING, "expire.failed"): S.EXPIRED,  # the hold stays at the processor: flagged for ops
    # refund (the refunded total decides partially_refunded or refunded: see ``refund_status``)
    (S.CAPTURED, "refund.requested"): S.REFUND_PENDING,
    (S.PARTIALLY_REFUNDED, "refund.requested"): S.REFUND_PENDING,
    (S.CAPTURED, "refund.approved"): S.REFUNDED,
    (S.PARTIALLY_REFUNDED, "refund.approved"): S.REFUNDED,
    (S.REFUND_PENDING, "refund.approved"): S.REFUNDED,
    (S.REFUND_PENDING, "refund.failed"): S.CAPTURED,
    (S.PARTIALLY_REFUNDED, "refund.failed"): S.CAPTURED,  # REFUND_FAILED after REFUND: the amount comes back
    (S.REFUNDED, "refund.failed"): S.CAPTURED,
}

# What the merchant may ask, from which statuses (the API's 409s come from here).
REQUESTS: dict[str, frozenset[str]] = {
    kind: frozenset(origin for (origin, trigger) in PAYMENT if trigger == f"{kind}.requested")
    for kind in ("capture", "void", "refund", "expire")
}

# A refund transaction: pending -> refunded | failed; a confirmed refund taken back -> failed.
REFUND: dict[tuple[str, str], str] = {
    ("pending", "refund.approved"): "refunded",
    ("pending", "refund.failed"): "failed",
    ("refunded", "refund.failed"): "failed",
}

# Statuses no trigger leaves, except the processor's late word listed above.
FINAL = frozenset({S.VOIDED, S.EXPIRED, S.REFUNDED, S.FAILED})


def next_status(status: str, trigger: str) -> str | None:
    """Where ``trigger`` takes a payment in ``status``, or None when the table has no such edge."""
    return PAYMENT.get((status, trigger))


def refund_status(captured: int, refunded: int) -> str:
    """The status a captured payment has with ``refunded`` of ``captured`` given back."""
    if refunded <= 0:
        return S.CAPTURED
    return S.REFUNDED if refunded >= captured else S.PARTIALLY_REFUNDED


def edges() -> list[tuple[str, str, str]]:
    """Every (from, trigger, to), for the docs and the tests."""
    return [(origin, trigger, to) for (origin, trigger), to in PAYMENT.items()]
