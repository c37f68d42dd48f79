"""A payment intent's 3-D Secure challenge: the intent's side of the customer's return, and of abandonment.

A confirm whose card needs a challenge leaves the intent ``requires_action``, holding the waiting payment's id
(``tahsil.payments.intents.confirm``); the hosted page's script sends the customer to the test page with the
client secret beside the page's token. When the customer comes back (``tahsil.payments.challenge.complete``) or
the timer gives up on them an hour on (``challenge.abandon``), the intent's change is written in the payment's
own transaction (``lifecycle.commit_authorization(also=...)``), conditional on the intent's version and on it
still waiting for this payment: payment and intent settle together, once, and a refreshed or doubled return
writes nothing. Then the customer lands on the intent's success_url (paid), or back on the hosted page to try
again (the client secret they brought, checked against its hash, is put back in its URL; it is never stored).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tahsil.connectors.base import Outcome
from tahsil.kernel import clock
from tahsil.kernel.ids import looks_like
from tahsil.payments import intents
from tahsil.payments.models import IntentStatus, PaymentStatus
from tahsil.store import dal


def intent_id_of(item: dict[str, Any]) -> str | None:
    """The intent a payment was made for (Tahsil sets ``metadata.payment_intent`` at confirm)."""
    intent_id = (item.get("metadata") or {}).get("payment_intent")
    return intent_id if isinstance(intent_id, str) and looks_like("pi", intent_id) else None


def intent_of(item: dict[str, Any]) -> dict[str, Any] | None:
    """That intent, if it exists and is the payment's merchant's, in the same mode."""
    intent_id = intent_id_of(item)
    intent = dal.get(dal.payments_table(), f"PI#{intent_id}", "PI") if intent_id else None
    if intent is None or intent["merchant_id"] != item["merchant_id"] or intent["mode"] != item["mode"]:
        return None
    return intent


def settle(item: dict[str, Any], outcome: Outcome, decline_code: str | None = None) -> list[dict[str, Any]]:
    """The intent's change for the outcome of its waiting payment ``item``, to be written in the payment's
    transaction: succeeded (the payment authorized or captured, as the intent's capture method made it), or a
    failed attempt counted as a decline is (back to created; locked at the fifth). None when no intent waits
    for this payment."""
    intent = intent_of(item)
    if intent is None or intent["status"] != IntentStatus.REQUIRES_ACTION or intent.get("payment_id") != item["id"]:
        return []
    now = clock.now()
    if outcome.status != "declined":
        kind = (item.get("attempt") or {}).get("kind", "authorize")
        fields: dict[str, Any] = {
            "status": IntentStatus.SUCCEEDED, "succeeded_at": clock.iso(now),
            "payment_status": PaymentStatus.CAPTURED if kind == "sale" else PaymentStatus.AUTHORIZED}
        event_type = "payment_intent.succeeded"
    else:
        failed = {"id": item["id"], "response_code": outcome.code, "response_message": outcome.message,
                  "decline_code": decline_code}
        fields = {"status": IntentStatus.CREATED, "payment_id": None, "payment_status": None,
                  **intents.failed_attempt(intent, failed, now)}
        event_type = "payment_intent.payment_failed"
    _, actions = intents.change(
        intents.principal_of(intent), None, intent, fields, event_type=event_type, now=now,
        condition="#st = :waiting AND #pid = :pid", names={"#st": "status", "#pid": "payment_id"},
        vals=dal.values(waiting=IntentStatus.REQUIRES_ACTION, pid=item["id"]))
    return actions


def settled(item: dict[str, Any]) -> None:
    """After the payment settled: an intent whose hour ran out while its customer was at the bank, and that
    is waiting for a payment again, expires now (``payment_intent.expired``, once: ``intents.expire``)."""
    intent_id = intent_id_of(item)
    if intent_id:
        intents.expire(intent_id)


def destinations(item: dict[str, Any]) -> list[str]:
    """Every place ``destination`` may send this payment's shopper outside the hosted page (none for others)."""
    intent = intent_of(item)
    return [] if intent is None else [intents.redirect_url(intent), intents.cancel_url(intent)]


def destination(item: dict[str, Any], client_secret: str | None) -> str | None:
    """Where the customer goes after the return, for an intent's payment (None for any other payment):
    the intent's success_url once this payment paid it; else the hosted page, to try again (or to read that
    the intent is locked or expired), for the holder of its client secret; else the intent's cancel_url."""
    intent = intent_of(item)
    if intent is None:
        return None
    if intent["status"] == IntentStatus.SUCCEEDED and intent.get("payment_id") == item["id"]:
        return intents.redirect_url(intent)
    if client_secret and item.get("return_url") and intents.secret_ok(intent, client_secret):
        return f"{item['return_url']}?{urlencode({'client_secret': client_secret})}"
    return intents.cancel_url(intent)
