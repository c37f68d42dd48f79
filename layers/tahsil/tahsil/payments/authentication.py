"""3-D Secure 2: a payment that waits for the shopper to authenticate with their bank (docs/decisions/threeds.md).

An authorization or sale whose issuer asks for a challenge is written ``requires_action`` (with the
merchant's ``return_url``) instead of being answered; its ``next_action`` sends the shopper to Tahsil's
authentication page (test mode: Tahsil's own page with Complete and Fail buttons). The shopper's return
commits the issuer's answer through ``transition``, conditional on the payment still being
``requires_action``, so a refreshed or doubled return commits exactly once; then the shopper is sent to
``return_url`` with ``payment_id=`` added (``tahsil.payments.challenge``: the page and the return).
Without a ``return_url`` such a payment fails at once
(``authentication_required``): nothing is held.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import secrets
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from tahsil.connectors.base import Outcome
from tahsil.kernel import clock
from tahsil.payments.models import PaymentStatus

DECLINE_REQUIRED = "authentication_required"
DECLINE_FAILED = "authentication_failed"
DECLINE_ABANDONED = "authentication_abandoned"
ABANDON_AFTER = dt.timedelta(hours=1)

# Where this request's authentication pages live (the authorize and sale handlers set it from the request, as
# checkout_url is made; PUBLIC_BASE_URL wins).
BASE_URL: contextvars.ContextVar[str] = contextvars.ContextVar("tahsil_authentication_base_url", default="")


def base_url() -> str:
    return (os.environ.get("PUBLIC_BASE_URL") or BASE_URL.get() or "").rstrip("/")


def declined_without_return() -> Outcome:
    return Outcome("declined", "05", "Authentication required", processor_reason=DECLINE_REQUIRED)


def fields(kind: str, payment_id: str, return_url: str, outcome: Outcome, now: dt.datetime) -> dict[str, Any]:
    """What a ``requires_action`` payment keeps: where the shopper returns, the page's secret, the deadline."""
    return {"return_url": return_url, "action_token": secrets.token_urlsafe(24),
            "action": outcome.action, "three_d_secure": outcome.three_d_secure,
            "authentication_expires_at": clock.iso(now + ABANDON_AFTER),
            "attempt": {"kind": kind, "reference": payment_id, "started_at": clock.iso(now)}}


def next_action(item: dict[str, Any]) -> dict[str, Any] | None:
    """The payment view's ``next_action``: where to send the shopper while it is ``requires_action``."""
    if item["status"] != PaymentStatus.REQUIRES_ACTION or not item.get("action_token"):
        return None
    url = f"{base_url()}/checkout/authenticate/{item['id']}?token={quote(item['action_token'], safe='')}"
    return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": item.get("return_url")}}


def with_payment_id(url: str, payment_id: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "payment_id"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("payment_id", payment_id)])))
