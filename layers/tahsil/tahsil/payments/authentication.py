"""3-D Secure 2: a payment that waits for the shopper to authenticate with their bank (docs/decisions/threeds.md).

An authorization or sale whose issuer asks for a challenge is written ``requires_action`` (with the
merchant's ``return_url``) instead of being answered; its ``next_action`` sends the shopper to Tahsil's
authentication page (test mode: Tahsil's own page with Complete and Fail buttons). The shopper's return
commits the issuer's answer through ``transition``, conditional on the payment still being
``requires_action``, so a refreshed or doubled return commits exactly once; then the shopper is sent to
``return_url`` with ``payment_id=`` added. Without a ``return_url`` such a payment fails at once
(``authentication_required``): nothing is held.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hmac
import html
import os
import secrets
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from tahsil.connectors.base import CardData, Operation, Outcome
from tahsil.kernel import clock
from tahsil.kernel.errors import InvalidRequest, NotFound
from tahsil.kernel.ids import looks_like
from tahsil.payments.models import PaymentStatus
from tahsil.payments.payments import SIMULATOR
from tahsil.store import crypto, dal

DECLINE_REQUIRED = "authentication_required"
DECLINE_FAILED = "authentication_failed"
DECLINE_ABANDONED = "authentication_abandoned"
ABANDON_AFTER = dt.timedelta(hours=1)

# Where this request's authentication pages live (the handler sets it from the request, as for checkout_url).
BASE_URL: contextvars.ContextVar[str] = contextvars.ContextVar("tahsil_authentication_base_url", default="")


def base_url() -> str:
    return (os.environ.get("PUBLIC_BASE_URL") or BASE_URL.get() or "").rstrip("/")


def remember_base(event: Any) -> None:
    """The handler's request names where the authentication page is (unless PUBLIC_BASE_URL says)."""
    from tahsil.payments.intents import public_base_url

    try:
        BASE_URL.set(public_base_url(os.environ.get("PUBLIC_BASE_URL", ""),
                                     domain_name=event.request_context.domain_name or event.headers.get("Host"),
                                     stage=event.request_context.stage))
    except RuntimeError:
        BASE_URL.set("")


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


# ---------------------------------------------------------------- the page and the return


def load(payment_id: str, token: str | None) -> dict[str, Any]:
    """The payment the page is for, if ``token`` is its action token; a 404 that says nothing otherwise."""
    if not looks_like("pay", payment_id):
        raise InvalidRequest("id must be a payment id (pay_...)", param="id")
    item = dal.get(dal.payments_table(), f"PAY#{payment_id}", "PAY")
    if item is None or not token or not item.get("action_token") \
            or not hmac.compare_digest(str(item["action_token"]), token):
        raise NotFound("no authentication is waiting here", param="id")
    return item


PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
}


def page(item: dict[str, Any], token: str) -> str:
    """Tahsil's test authentication page: a plain form (no script), Complete or Fail."""
    amount = f"{item['amount']} {item['currency']} (minor units)"
    hidden = f'<input type="hidden" name="token" value="{html.escape(token)}">'
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>3-D Secure test authentication</title>"
        "</head><body><main><h1>3-D Secure test authentication</h1>"
        f"<p>Test mode: your bank would ask you to confirm this payment of {html.escape(amount)} "
        f"with the card ending {html.escape(item['card_last4'])}.</p>"
        f'<form method="post" action="{html.escape(item["id"])}">{hidden}'
        '<button type="submit" name="result" value="complete">Complete</button> '
        '<button type="submit" name="result" value="fail">Fail</button></form></main></body></html>')


def complete(item: dict[str, Any], result: str) -> str:
    """The shopper's return: commit the issuer's answer once, and say where to send the shopper (303)."""
    from tahsil.payments import lifecycle  # lifecycle imports this module

    if result not in ("complete", "fail"):
        raise InvalidRequest("result must be complete or fail", param="result")
    if item["status"] == PaymentStatus.REQUIRES_ACTION:
        outcome = SIMULATOR.authenticated(_operation(item), completed=result == "complete") \
            if not item.get("connector") or item["connector"] == SIMULATOR.name else None
        if outcome is None:
            raise InvalidRequest("this payment authenticates with its processor", param="id")
        extra = {"three_d_secure": outcome.three_d_secure}
        if result != "complete":
            extra["decline_code"] = DECLINE_FAILED
        item = lifecycle.commit_authorization(item["id"], outcome, extra=extra)
    return with_payment_id(item.get("return_url") or "", item["id"])


def _operation(item: dict[str, Any]) -> Operation:
    pan = crypto.vault.unseal(item["card_sealed"], context=f"{item['merchant_id']}/{item['id']}",
                              merchant=item["merchant_id"])
    card = CardData(pan, int(item["card_exp_month"]), int(item["card_exp_year"]))
    kind = (item.get("attempt") or {}).get("kind", "authorize")
    return Operation(kind, item["id"], int(item["amount"]), item["currency"], item["id"], card=card)


def query(body: str) -> dict[str, str]:
    """A form post's fields (application/x-www-form-urlencoded)."""
    return dict(parse_qsl(body or "", keep_blank_values=True))
