"""Event rendering: the one place that knows the event types and every payload version.

An event row (``tahsil.kernel.events``) holds the payload as the latest API version renders it. A webhook
endpoint gets it rendered for the endpoint's ``api_version`` (``body_for``: the bytes that are signed and
sent); the events API shows the latest payload (``payload``). Older versions are described in
``tahsil.kernel.versions``; nothing else in ``tahsil.webhooks`` renders a payload.
"""

from __future__ import annotations

import json
from typing import Any

from tahsil.kernel import versions
from tahsil.kernel.events import payload_of, payload_text

EVENT_TYPES = (
    "payment.authorized", "payment.captured", "payment.voided", "payment.refunded", "payment.failed",
    "payment.expired", "payment.authorization_expiring",
    # 3-D Secure: the payment waits for the shopper to authenticate (its next_action says where to send them).
    "payment.requires_action",
    # Live payments through a processor connector: a capture, void or refund the processor refused after acknowledging it.
    "payment.capture_failed", "payment.void_failed", "payment.refund_failed",
    "payment_intent.created", "payment_intent.succeeded", "payment_intent.canceled",
    "payment_intent.payment_failed", "payment_intent.expired",
    # 3-D Secure: the intent's customer is authenticating its payment with their bank (then succeeded or payment_failed).
    "payment_intent.requires_action",
    # The account: the payout bank account changed (live mode; old and new last four digits, tahsil.console.profile).
    "account.updated",
)
TEST_EVENT = "webhook_endpoint.test"


def body_for(endpoint: dict[str, Any] | None, event: dict[str, Any]) -> bytes:
    """The bytes to sign and send: the event rendered for the endpoint's API version.

    Deterministic (sorted keys, compact), so every retry sends and signs the same bytes.
    """
    version = (endpoint or {}).get("api_version") or versions.LATEST
    if version == versions.LATEST:
        return payload_text(event).encode()
    payload = {**payload_of(event), "merchant_id": event["merchant_id"]}  # seed 002's data.merchant_id
    rendered = versions.render(payload, version, "event")
    return json.dumps(rendered, separators=(",", ":"), sort_keys=True).encode()


def payload(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the events API shows it (the latest version; the API layer renders older ones)."""
    return payload_of(event)
