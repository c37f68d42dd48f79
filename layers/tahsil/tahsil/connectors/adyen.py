"""Adyen: the Checkout API through Adyen's Python library (``Adyen`` on PyPI).

What is sent (docs/connectors.md has the full picture):
- an authorization or sale is ``POST /payments`` with the raw card (``paymentMethod.type = scheme``),
  Tahsil's payment id as ``reference`` and as the ``Idempotency-Key`` header; an authorization asks
  for manual capture, a sale for immediate capture (``captureDelayHours: 0``);
- a capture, cancel or refund is ``POST /payments/{pspReference}/captures|cancels|refunds`` with
  Tahsil's transaction id as ``reference`` and ``Idempotency-Key``. Adyen acknowledges
  (``status: received``); the outcome arrives later as a CAPTURE, CANCELLATION or REFUND
  notification, which ``parse_notifications`` verifies (HMAC) and normalizes.
- a request sent again with the same Idempotency-Key gets the first request's outcome (API idempotency,
  keys kept at least 7 days) and never acts twice; Tahsil re-sends a modification, and an authorization
  only when the merchant's same-key retry carries the card (tahsil.payments.lifecycle).
- "I don't know" is never "no": a timeout, a 5xx, a 422 with 704 ("in progress") and a 401/403 raise
  ``OutcomeUnknown``; only Adyen's answer about the operation itself is an Outcome.

Adyen's result codes and refusal reasons map onto seed 002's codes (``REFUSAL_CODES``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tahsil.connectors.base import SEED_CODES, Connector, ConnectorError, Operation, Outcome, OutcomeUnknown

API_VERSION = "v71"

# Adyen refusalReasonCode -> seed code. Anything not listed is a generic "do not honor" (05).
REFUSAL_CODES: dict[str, str] = {
    "4": "96",   # Acquirer Error
    "9": "96",   # Issuer Unavailable
    "21": "96",  # Not Submitted
    "6": "54",   # Expired Card
    "12": "51",  # Not enough balance
    "28": "51",  # Withdrawal amount exceeded
    "29": "51",  # Withdrawal count exceeded
    "24": "N7",  # CVC Declined
    "14": "59",  # Acquirer Fraud
    "20": "59",  # FRAUD
    "22": "59",  # FRAUD-CANCELLED
    "31": "59",  # Issuer Suspected Fraud
}
# The same by refusalReason text (notifications carry the text only).
REFUSAL_TEXTS: dict[str, str] = {
    "acquirer error": "96", "issuer unavailable": "96", "not submitted": "96",
    "expired card": "54",
    "not enough balance": "51", "withdrawal amount exceeded": "51", "withdrawal count exceeded": "51",
    "cvc declined": "N7",
    "acquirer fraud": "59", "fraud": "59", "fraud-cancelled": "59", "issuer suspected fraud": "59",
}
# 4xx error codes about the request rather than the operation (docs.adyen.com, API idempotency and error codes):
# 704 "request already processed or in progress"; the outcome of the first request is unknown, not refused.
REQUEST_ERRORS = frozenset({"704"})
# resultCode values that need the shopper (3-D Secure, redirects): Tahsil's raw-card API cannot do them.
SHOPPER_ACTIONS = frozenset({"RedirectShopper", "IdentifyShopper", "ChallengeShopper", "PresentToShopper"})


def seed_code(reason_code: str | None, reason: str | None) -> str:
    if reason_code and str(reason_code) in REFUSAL_CODES:
        return REFUSAL_CODES[str(reason_code)]
    if reason:
        return REFUSAL_TEXTS.get(reason.strip().lower(), "05")
    return "05"


def payment_outcome(answer: dict[str, Any]) -> Outcome:
    """A /payments answer (or an AUTHORISATION's fields) as an Outcome."""
    result = answer.get("resultCode")
    psp = answer.get("pspReference")
    reason = answer.get("refusalReason")
    auth_code = (answer.get("additionalData") or {}).get("authCode")
    if result == "Authorised":
        return Outcome("approved", "00", SEED_CODES["00"], psp, None, auth_code)
    if result == "Refused":
        code = seed_code(answer.get("refusalReasonCode"), reason)
        return Outcome("declined", code, SEED_CODES[code], psp, f"Refused: {reason or 'no reason given'}")
    if result == "Error":
        return Outcome("declined", "96", SEED_CODES["96"], psp, f"Error: {reason or 'no reason given'}")
    if result == "Cancelled":
        return Outcome("declined", "05", SEED_CODES["05"], psp, "Cancelled")
    if result in SHOPPER_ACTIONS:
        return Outcome("declined", "05", SEED_CODES["05"], psp,
                       f"{result}: the card needs shopper authentication, which raw-card payments cannot do")
    if result in ("Received", "Pending"):
        return Outcome("pending", "00", "Pending", psp, result)  # settles by AUTHORISATION notification
    return Outcome("declined", "96", SEED_CODES["96"], psp, f"unexpected resultCode {result!r}")


class AdyenConnector(Connector):
    name = "adyen"
    remote = True

    def __init__(self, *, api_key: str, merchant_account: str, environment: str = "test",
                 live_url_prefix: str | None = None, base_url: str | None = None) -> None:
        if environment not in ("test", "live"):
            raise ConnectorError("adyen environment must be test or live")
        if environment == "live" and not live_url_prefix and not base_url:
            raise ConnectorError("a live Adyen account needs its live URL prefix")
        self.api_key = api_key
        self.merchant_account = merchant_account
        self.environment = environment
        self.live_url_prefix = live_url_prefix
        self.base_url = base_url  # only for a local fake Adyen (tahsil.connectors.settings checks it)

    def __repr__(self) -> str:  # never the API key
        return f"AdyenConnector(merchant_account={self.merchant_account!r}, environment={self.environment!r})"

    def _checkout(self, timeout: float) -> Any:
        import Adyen  # ~60 ms: only functions that call Adyen pay for it

        client = Adyen.AdyenClient(xapikey=self.api_key, platform=self.environment, merchant_account=self.merchant_account,
                                   live_endpoint_prefix=self.live_url_prefix, http_force="urllib",
                                   http_timeout=timeout, application_name="Tahsil")  # type: ignore[arg-type]
        checkout = Adyen.AdyenCheckoutApi(client=client)
        if self.base_url:
            for api in (checkout.payments_api, checkout.modifications_api):
                api.baseUrl = f"{self.base_url.rstrip('/')}/{API_VERSION}"
        else:
            for api in (checkout.payments_api, checkout.modifications_api):
                api.baseUrl = api.baseUrl.rsplit("/", 1)[0] + f"/{API_VERSION}"
        return checkout

    def request_body(self, op: Operation) -> dict[str, Any]:
        """The JSON body Adyen receives (the card only for authorize and sale)."""
        body: dict[str, Any] = {"merchantAccount": self.merchant_account, "reference": op.reference}
        if op.kind != "void":
            body["amount"] = {"value": op.amount, "currency": op.currency}
        if op.kind in ("authorize", "sale"):
            if op.card is None:
                raise ValueError("an authorization needs a card")
            method: dict[str, Any] = {"type": "scheme", "number": op.card.number,
                                      "expiryMonth": f"{op.card.exp_month:02d}", "expiryYear": str(op.card.exp_year)}
            if op.card.cvv:
                method["cvc"] = op.card.cvv
            if op.card.holder:
                method["holderName"] = op.card.holder
            body |= {"paymentMethod": method, "shopperInteraction": "Ecommerce"}
            if op.kind == "sale":
                body["captureDelayHours"] = 0
            else:
                body["additionalData"] = {"manualCapture": "true"}
        return body

    def execute(self, op: Operation, *, timeout: float) -> Outcome:
        import Adyen  # only where a call is made: other functions' cold starts stay short

        checkout = self._checkout(timeout)
        body = self.request_body(op)
        try:
            if op.kind in ("authorize", "sale"):
                answer = checkout.payments_api.payments(body, idempotency_key=op.reference).message
                return payment_outcome(answer)
            if not op.payment_reference:
                raise ValueError(f"a {op.kind} needs the payment's pspReference")
            mods = checkout.modifications_api
            call = {"capture": mods.capture_authorised_payment, "void": mods.cancel_authorised_payment_by_psp_reference,
                    "refund": mods.refund_captured_payment}[op.kind]
            answer = call(body, op.payment_reference, idempotency_key=op.reference).message
        except (Adyen.AdyenAPIValidationError, Adyen.AdyenAPIUnprocessableEntity) as exc:
            code = str(getattr(exc, "error_code", None) or "")
            if code in REQUEST_ERRORS:
                # About the request, not the operation: "already processed or in progress" (704) or an
                # idempotency conflict. The first request may have acted: ask again, never a decline.
                raise OutcomeUnknown(f"Adyen answered {exc.status_code} {code}: {_message(exc)}") from None
            # Refused as invalid before anything happened (e.g. capture above the authorized amount).
            return Outcome("declined", "96", SEED_CODES["96"], getattr(exc, "psp", None),
                           f"{code or exc.status_code}: {_message(exc)}")
        except (Adyen.AdyenAPIAuthenticationError, Adyen.AdyenAPIInvalidPermission) as exc:
            # About the request (credentials, permissions), not the operation: a retry with the same
            # idempotency key may have been answered before; unknown, never a decline.
            raise OutcomeUnknown(f"Adyen refused the credentials ({exc.status_code})") from None
        except Adyen.AdyenError as exc:
            raise OutcomeUnknown(f"Adyen answered {getattr(exc, 'status_code', '?')}") from None
        except OSError as exc:  # timeouts, refused or reset connections, URLError: the answer is lost
            raise OutcomeUnknown(f"no answer from Adyen: {type(exc).__name__}") from None
        if answer.get("status") == "received":
            return Outcome("pending", "00", f"{op.kind.capitalize()} requested", answer.get("pspReference"), "received")
        return Outcome("declined", "96", SEED_CODES["96"], answer.get("pspReference"),
                       f"unexpected modification status {answer.get('status')!r}")

    def lookup(self, op: Operation, *, timeout: float) -> Outcome:
        # Adyen has no "find by merchant reference" in the Checkout API; the documented way to learn a lost
        # answer is to send the request again with the same Idempotency-Key, which returns the first outcome.
        return self.execute(op, timeout=timeout)


def _message(exc: Exception) -> str:
    raw = getattr(exc, "message", None)
    if isinstance(raw, dict):
        return str(raw.get("message") or raw.get("errorCode") or "invalid request")
    return str(raw or "invalid request")[:200]


# ---------------------------------------------------------------- notifications


class InvalidNotification(Exception):
    """Not a well-formed Adyen notification, or its HMAC signature does not verify."""


@dataclass(frozen=True)
class Notification:
    event_code: str  # AUTHORISATION, CAPTURE, CAPTURE_FAILED, CANCELLATION, REFUND, REFUND_FAILED, ...
    success: bool
    psp_reference: str
    original_reference: str | None  # the payment's pspReference, on modifications
    merchant_reference: str  # Tahsil's reference (pay_... or txn_...)
    merchant_account: str
    amount: int
    currency: str
    reason: str | None
    auth_code: str | None

    @property
    def identity(self) -> str:
        """Adyen may send a notification more than once; these fields name it."""
        return f"{self.event_code}:{self.psp_reference}:{'true' if self.success else 'false'}"

    def outcome(self) -> Outcome:
        if self.event_code == "AUTHORISATION":
            if self.success:
                return Outcome("approved", "00", SEED_CODES["00"], self.psp_reference, None, self.auth_code)
            code = seed_code(None, self.reason)
            return Outcome("declined", code, SEED_CODES[code], self.psp_reference, f"Refused: {self.reason or 'no reason'}")
        if self.success and not self.event_code.endswith("_FAILED"):
            return Outcome("approved", "00", SEED_CODES["00"], self.psp_reference, self.event_code)
        return Outcome("declined", "96", SEED_CODES["96"], self.psp_reference,
                       f"{self.event_code} failed: {self.reason or 'no reason given'}")


def parse_notifications(body: str, hmac_key: str) -> list[Notification]:
    """Every item of an Adyen standard notification, each verified against ``hmac_key`` (hex)."""
    from Adyen import util

    try:
        doc = json.loads(body)
        items = [entry["NotificationRequestItem"] for entry in doc["notificationItems"]]
    except (ValueError, KeyError, TypeError):
        raise InvalidNotification("body is not an Adyen notification (notificationItems[].NotificationRequestItem)") from None
    parsed: list[Notification] = []
    for item in items:
        try:
            valid = util.is_valid_hmac_notification(item, hmac_key)
        except (ValueError, KeyError, TypeError, AttributeError):
            valid = False
        if not valid:
            raise InvalidNotification("HMAC signature does not verify")
        try:
            parsed.append(Notification(
                event_code=str(item["eventCode"]), success=str(item["success"]).lower() == "true",
                psp_reference=str(item["pspReference"]), original_reference=item.get("originalReference") or None,
                merchant_reference=str(item.get("merchantReference") or ""), merchant_account=str(item["merchantAccountCode"]),
                amount=int(item["amount"]["value"]), currency=str(item["amount"]["currency"]),
                reason=item.get("reason") or None, auth_code=(item.get("additionalData") or {}).get("authCode"),
            ))
        except (KeyError, TypeError, ValueError):
            raise InvalidNotification("notification item lacks a required field") from None
    return parsed
