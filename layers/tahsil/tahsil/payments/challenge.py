"""The 3-D Secure test page and the shopper's return (``tahsil.payments.authentication`` says what waits for them).

The return commits the issuer's answer through the lifecycle (``commit_authorization``), conditional on the
payment still being ``requires_action``: a refreshed or doubled return commits nothing more and sends the shopper
to the same ``return_url``. A payment intent's payment settles its intent in the same transaction, and its
shopper goes back to the hosted checkout flow (``tahsil.payments.intent_challenge``).
"""

from __future__ import annotations

import hmac
import html
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tahsil.connectors.base import Outcome
from tahsil.kernel import clock
from tahsil.kernel.errors import ConcurrentUpdate, InvalidRequest, NotFound
from tahsil.kernel.ids import looks_like
from tahsil.payments import intent_challenge, lifecycle
from tahsil.payments.authentication import DECLINE_ABANDONED, DECLINE_FAILED, with_payment_id
from tahsil.payments.models import PaymentStatus
from tahsil.payments.payments import SIMULATOR
from tahsil.payments.transitions import OPTIMISTIC_RETRIES, AlsoFailed
from tahsil.store import dal


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
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?")


def headers_for(item: dict[str, Any]) -> dict[str, str]:
    """The page's headers: ``form-action`` lets the form's 303 reach where the shopper goes next (browsers check
    form-action on a submission's redirects too): the return_url's origin, or an intent's success and cancel URLs'."""
    targets = [item.get("return_url") or "", *intent_challenge.destinations(item)]
    origins = sorted({m.group(0) for m in (_ORIGIN.fullmatch(_origin(t)) for t in targets) if m})
    csp = PAGE_HEADERS["Content-Security-Policy"].replace("form-action 'self'", " ".join(["form-action 'self'", *origins]))
    return {**PAGE_HEADERS, "Content-Security-Policy": csp}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def show(payment_id: str, token: str | None, client_secret: str | None = None) -> tuple[int, str, dict[str, str]]:
    """GET /checkout/authenticate/{id}: the page for whoever holds the payment's authentication token
    (and, from the hosted checkout page, its intent's client secret, carried on to the return)."""
    item = load(payment_id, token or "")
    return 200, page(item, token or "", client_secret), headers_for(item)


def answer(payment_id: str, body: str | None) -> str:
    """POST /checkout/authenticate/{id}: commit the form's result once; where to send the shopper (its return_url,
    or for a payment intent's payment its success_url or the hosted page)."""
    form = query(body or "")
    item = load(payment_id, form.get("token"))
    return complete(item, form.get("result", ""), form.get("client_secret"))


def page(item: dict[str, Any], token: str, client_secret: str | None = None) -> str:
    """Tahsil's test authentication page: a plain form (no script), Complete or Fail."""
    amount = f"{item['amount']} {item['currency']} (minor units)"
    hidden = f'<input type="hidden" name="token" value="{html.escape(token)}">'
    if client_secret and len(client_secret) <= 256:
        hidden += f'<input type="hidden" name="client_secret" value="{html.escape(client_secret)}">'
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>3-D Secure test authentication</title>"
        "</head><body><main><h1>3-D Secure test authentication</h1>"
        f"<p>Test mode: your bank would ask you to confirm this payment of {html.escape(amount)} "
        f"with the card ending {html.escape(item['card_last4'])}.</p>"
        f'<form method="post" action="{html.escape(item["id"])}">{hidden}'
        '<button type="submit" name="result" value="complete">Complete</button> '
        '<button type="submit" name="result" value="fail">Fail</button></form></main></body></html>')


def complete(item: dict[str, Any], result: str, client_secret: str | None = None) -> str:
    """The shopper's return: commit the issuer's answer once, and say where to send the shopper (303)."""
    if result not in ("complete", "fail"):
        raise InvalidRequest("result must be complete or fail", param="result")
    if item["status"] == PaymentStatus.REQUIRES_ACTION:
        outcome = SIMULATOR.authenticated(item["id"], item.get("action") or {}, completed=result == "complete") \
            if not item.get("connector") or item["connector"] == SIMULATOR.name else None
        if outcome is None:
            raise InvalidRequest("this payment authenticates with its processor", param="id")
        extra = {"three_d_secure": outcome.three_d_secure}
        if result != "complete":
            extra["decline_code"] = DECLINE_FAILED
        item = _commit(item, outcome, extra)
    return intent_challenge.destination(item, client_secret) or with_payment_id(item.get("return_url") or "", item["id"])


def _commit(item: dict[str, Any], outcome: Outcome, extra: dict[str, Any], **how: Any) -> dict[str, Any]:
    """The payment's outcome and, for an intent's payment, the intent's change, in one transaction (once)."""
    for _ in range(OPTIMISTIC_RETRIES):
        also = intent_challenge.settle(item, outcome, extra.get("decline_code"))
        try:
            updated = lifecycle.commit_authorization(item["id"], outcome, extra=extra, also=also, **how)
        except AlsoFailed:  # the intent changed after it was read: read both again
            item = dal.get(dal.payments_table(), item["pk"], "PAY") or item
            how.pop("known", None)
            continue
        intent_challenge.settled(updated)
        return updated
    raise ConcurrentUpdate("the payment intent is being changed by other requests; retry")


def abandon(payment_id: str) -> bool:
    """The timer: a payment still ``requires_action`` an hour on fails (``authentication_abandoned``), once.
    True if this call did it; False if the shopper came back first, or the time has not come."""
    item = dal.get(dal.payments_table(), f"PAY#{payment_id}", "PAY")
    if item is None or item["status"] != PaymentStatus.REQUIRES_ACTION \
            or clock.iso(clock.now()) < str(item.get("authentication_expires_at") or ""):
        return False
    three_ds = {**(item.get("three_d_secure") or {}), "result": "abandoned", "liability_shift": False}
    outcome = Outcome("declined", "05", "Authentication abandoned", processor_reference=item["id"],
                      processor_reason=DECLINE_ABANDONED)
    updated = _commit(item, outcome, {"decline_code": DECLINE_ABANDONED, "three_d_secure": three_ds},
                      trigger="authorize.abandoned", known=item)
    return updated["status"] == PaymentStatus.FAILED and updated.get("decline_code") == DECLINE_ABANDONED


def query(body: str) -> dict[str, str]:
    """A form post's fields (application/x-www-form-urlencoded)."""
    return dict(parse_qsl(body or "", keep_blank_values=True))
