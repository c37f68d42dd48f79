"""Payments' request and response models: payments, transactions, payment intents, test helpers.

Constraints live here, so a bad field becomes a 400 that names it; the response shapes feed the
OpenAPI document (the domain renders plain dicts).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from tahsil.kernel.models import CURRENCY_FORM, EMAIL_FORM, Strict, described, worded
from tahsil.kernel.money import MINOR_UNITS, SUPPORTED_CURRENCIES
from tahsil.payments import cards

# _LAZY: models that a card payment's first request does not use are built on
# first use (pydantic ``defer_build``) rather than when this module is imported, which every payments function
# does: the listings, the test-mode clock and payment intents build theirs when they first validate or answer.
# (docs/decisions/cold-start.md)


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    FAILED = "failed"
    EXPIRED = "expired"
    # Pending states of payments handed to a remote processor (tahsil.payments.processing, docs/connectors.md).
    PROCESSING = "processing"  # sent to the processor, answer not known yet
    CAPTURE_PENDING = "capture_pending"  # capture acknowledged by the processor, waiting for its confirmation
    VOID_PENDING = "void_pending"
    REFUND_PENDING = "refund_pending"
    # Waiting for the shopper to authenticate with their bank (3-D Secure 2; tahsil.payments.authentication).
    REQUIRES_ACTION = "requires_action"


# The lifecycle's transitions are written down once, in tahsil.payments.machine.


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _supported(value: str) -> str:
    if value not in MINOR_UNITS:
        raise ValueError(f"unsupported currency {value!r}; supported: {', '.join(SUPPORTED_CURRENCIES)}")
    return value


_CURRENCY = r"^[A-Z]{3}$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Currency = Annotated[
    str,
    worded(_CURRENCY, CURRENCY_FORM),  # runs after _upper: before-validators run last-declared first
    BeforeValidator(_upper),
    StringConstraints(pattern=_CURRENCY),
    AfterValidator(_supported),
    Field(description="ISO 4217 code; amounts use its minor unit (USD cents, IQD fils)", examples=["USD"]),
]
Amount = Annotated[int, Field(strict=True, ge=1, description="Amount in the currency's minor unit")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Metadata = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=40)], Annotated[str, StringConstraints(max_length=500)]],
    Field(max_length=50, description="Up to 50 string pairs for your reference"),
]


def _digits(value: object) -> object:
    if isinstance(value, str):
        return re.sub(r"[ -]", "", value)
    return value


class Card(Strict):
    number: Annotated[SecretStr, BeforeValidator(_digits), Field(description="12 to 19 digits; spaces allowed")]
    exp_month: Annotated[int, Field(strict=True, ge=1, le=12)]
    exp_year: Annotated[int, Field(strict=True, ge=2000, le=2100)]
    cvv: Annotated[SecretStr, Field(description="3 or 4 digits; never stored")]
    cardholder_name: Annotated[str, StringConstraints(max_length=100)] | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: SecretStr) -> SecretStr:
        pan = value.get_secret_value()
        if not re.fullmatch(r"\d{12,19}", pan):
            raise ValueError("card number must be 12 to 19 digits")
        if not cards.luhn_ok(pan):
            raise ValueError("card number is invalid (Luhn check failed)")
        if cards.detect_brand(pan) is None:
            raise ValueError("card brand is not supported")
        return value

    @field_validator("cvv")
    @classmethod
    def _cvv(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"\d{3,4}", value.get_secret_value()):
            raise ValueError("cvv must be 3 or 4 digits")
        return value

    @model_validator(mode="after")
    def _not_expired(self) -> Card:
        if not cards.expiry_in_future(self.exp_month, self.exp_year, dt.datetime.now(dt.UTC).date()):
            raise ValueError("card has expired (exp_month/exp_year are in the past)")
        return self

    @property
    def pan(self) -> str:
        return self.number.get_secret_value()


class Customer(Strict):
    email: Annotated[str, StringConstraints(max_length=254, pattern=_EMAIL), worded(_EMAIL, EMAIL_FORM)] | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None


ReturnUrl = Annotated[
    str,
    AfterValidator(lambda value: _redirect_url(value)),
    Field(description="Where the shopper comes back after authenticating with their bank (3-D Secure); "
                      "https:// (http://localhost and http://127.0.0.1 allowed for testing), at most 2048 characters. "
                      "Without it, a card that needs authentication is declined (authentication_required)",
          examples=["https://shop.example/order/123/paid"]),
]


class PaymentCreate(Strict):
    amount: Amount
    currency: Currency
    card: Card
    customer: Customer | None = None
    description: ShortText | None = None
    metadata: Metadata | None = None
    return_url: ReturnUrl | None = None


class CaptureRequest(Strict):
    model_config = ConfigDict(defer_build=True)  # built on first use (not by authorize): see _LAZY
    amount: Amount | None = Field(default=None, description="Defaults to the full authorized amount")


class VoidRequest(Strict):
    model_config = ConfigDict(defer_build=True)  # built on first use (not by authorize): see _LAZY
    reason: ShortText


class RefundRequest(Strict):
    model_config = ConfigDict(defer_build=True)  # built on first use (not by authorize): see _LAZY
    amount: Amount | None = Field(default=None, description="Defaults to everything not yet refunded")
    reason: ShortText


class Advance(Strict):
    """Test-mode time travel: move a test payment's or intent's clock forward."""

    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    seconds: Annotated[int, Field(strict=True, ge=1, le=366 * 86400, description="how far to move the object's clock")]


# ---------------------------------------------------------------- response shapes


class Payment(BaseModel):
    model_config = ConfigDict(defer_build=True)  # the response's schema: built for the OpenAPI document, not per request
    id: str
    object: str = "payment"
    status: str
    amount: int
    currency: str
    captured_amount: int
    refunded_amount: int
    remaining_amount: int = Field(description="Seed 002's name for what is left to refund (captured - refunded); "
                                              "0 on an authorized payment")
    amount_capturable: int = Field(default=0, description="What can still be captured: the amount of an unexpired "
                                                          "authorization, else 0")
    amount_refundable: int = Field(default=0, description="What can still be refunded: captured - refunded")
    card_brand: str
    card_last4: str
    card_exp_month: int
    card_exp_year: int
    auth_code: str | None
    response_code: str
    response_message: str
    fraud_score: int
    fraud_decision: str
    transaction_id: str
    description: str | None
    customer: dict[str, str] | None
    metadata: dict[str, str]
    livemode: bool
    created_at: str
    expires_at: str | None
    captured_at: str | None
    voided_at: str | None
    void_reason: str | None
    refunded_at: str | None
    refund_reason: str | None
    processor_reference: str | None = Field(default=None, description="The processor's reference (live payments)")
    pending_action: dict[str, Any] | None = Field(
        default=None, description="A capture, void or refund acknowledged by the processor and not yet confirmed: "
                                  "type, amount, transaction_id")
    decline_code: str | None = Field(default=None, description="processor_unreachable when no answer came from the "
                                     "processor before the recovery deadline (live payments); authentication_required, "
                                     "authentication_failed or authentication_abandoned (3-D Secure)")
    three_d_secure: dict[str, Any] | None = Field(
        default=None, description="null, or how the cardholder was authenticated (3-D Secure 2): version, "
                                  "flow (frictionless or challenge), result (authenticated, failed, abandoned, or null "
                                  "while waiting), liability_shift")
    next_action: dict[str, Any] | None = Field(
        default=None, description="While status is requires_action: {type: redirect_to_url, redirect_to_url: {url, "
                                  "return_url}}; send the shopper to url")
    review: dict[str, Any] | None = Field(default=None, description="Set when the processor's notification "
                                                                  "contradicted Tahsil's record: reason, at")


class Transaction(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    id: str
    object: str = "transaction"
    payment_id: str
    type: str
    status: str
    amount: int
    currency: str
    card_brand: str
    card_last4: str
    auth_code: str | None
    response_code: str
    response_message: str
    reason: str | None
    livemode: bool
    created_at: str


class PaymentList(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    object: str = "list"
    payments: list[Payment]
    has_more: bool
    limit: int
    next_starting_after: str | None


class TransactionList(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    transactions: list[Transaction]
    total: int
    limit: int
    offset: int
    has_more: bool
    next_starting_after: str | None


# ---------------------------------------------------------------- payment intents

MAX_URL_LENGTH = 2048
PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
_PLACEHOLDERS = (PLACEHOLDER, "%7BCHECKOUT_SESSION_ID%7D", "%7bCHECKOUT_SESSION_ID%7d")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})


class IntentStatus(StrEnum):
    CREATED = "created"  # waiting for the customer to pay (Stripe: requires_payment_method)
    # The customer's card needs 3-D Secure: their payment waits for them at their bank's page (payment_id set)
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"  # the payment is captured (automatic) or authorized (manual capture)
    CANCELED = "canceled"  # by the merchant
    EXPIRED = "expired"  # not paid by expires_at (reads say so from that moment)
    LOCKED = "locked"  # five declined attempts: create a new intent to try again


# The lifecycle, written down once: action -> statuses it may start from. A confirm goes to succeeded, to
# requires_action (a card that needs 3-D Secure), or stays created (a decline; locked at the fifth); the
# customer's return from their bank (or the timer an hour on) settles requires_action: succeeded, or a failed
# attempt (created, locked at the fifth, expired when the hour is over). Cancel waits for that return.
INTENT_TRANSITIONS: dict[str, frozenset[IntentStatus]] = {
    "confirm": frozenset({IntentStatus.CREATED}),
    "authenticated": frozenset({IntentStatus.REQUIRES_ACTION}),
    "cancel": frozenset({IntentStatus.CREATED, IntentStatus.LOCKED}),
}


def with_intent_id(url: str, intent_id: str) -> str:
    for placeholder in _PLACEHOLDERS:
        url = url.replace(placeholder, intent_id)
    return url


def _redirect_url(value: str) -> str:
    """HTTPS only, except http://localhost and http://127.0.0.1 (any port) for testing."""
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must be a URL without spaces or control characters")
    # Check the URL the customer will actually be sent to, with the placeholder filled in.
    parts = urlsplit(with_intent_id(value, "pi_00000000000000000000"))
    try:
        host, _ = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:
        raise ValueError("must be an absolute URL with a valid port") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold a user name or password")
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise ValueError("must use https:// (http:// is allowed only for localhost and 127.0.0.1)")
    return value


RedirectUrl = Annotated[
    str,
    AfterValidator(_redirect_url),
    Field(description="https:// (http://localhost and http://127.0.0.1 allowed for testing), at most 2048 characters; "
                      "`{CHECKOUT_SESSION_ID}` is replaced with the intent id",
          examples=["https://shop.example/order/success?session_id={CHECKOUT_SESSION_ID}"]),
]
Email = Annotated[str, StringConstraints(max_length=254, pattern=_EMAIL), worded(_EMAIL, EMAIL_FORM)]
# The payment made from an intent carries its metadata plus `payment_intent` and `order_id`: 48 + 2 = 50.
IntentMetadata = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=40)], Annotated[str, StringConstraints(max_length=500)]],
    Field(max_length=48, description="Up to 48 string pairs; the payment gets them plus payment_intent and order_id"),
]


class IntentCreate(Strict):
    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    amount: Amount
    currency: Currency
    success_url: RedirectUrl
    cancel_url: RedirectUrl | None = Field(default=None, description="Defaults to success_url")
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    description: ShortText | None = Field(default=None, description="Shown to the customer on the checkout page")
    capture_method: Literal["automatic", "manual"] = Field(
        default="automatic", description="automatic: captured at once; manual: authorized, capture it later")
    customer_email: Email | None = Field(default=None, description="Pre-filled on the checkout page")
    metadata: IntentMetadata | None = None


class IntentConfirm(Strict):
    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    card: Card
    customer_email: Email | None = Field(default=None, description="Optional if given when the intent was created")


# ---------------------------------------------------------------- response shapes


class PaymentError(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    code: str
    message: str
    payment_id: str | None = None


class PaymentIntent(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    id: str
    object: str = "payment_intent"
    status: IntentStatus
    amount: int
    currency: str
    capture_method: str
    success_url: str
    cancel_url: str
    order_id: str | None
    description: str | None
    customer_email: str | None
    metadata: dict[str, str]
    attempts: int
    remaining_attempts: int
    last_payment_error: PaymentError | None
    payment_id: str | None
    payment_status: str | None = Field(description="The linked payment's status now (captured, refunded...)")
    amount_captured: int
    amount_refunded: int
    livemode: bool
    created_at: str
    expires_at: str
    succeeded_at: str | None
    canceled_at: str | None


class CreatedPaymentIntent(PaymentIntent):
    client_secret: str = Field(description="Shown once, here and in checkout_url; give it to the customer's browser only")
    checkout_url: str


class PaymentIntentList(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    object: str = "list"
    payment_intents: list[PaymentIntent]
    has_more: bool
    limit: int
    next_starting_after: str | None


class PublicPaymentIntent(BaseModel):
    """What anyone holding the intent's id may read (no key, no client secret): what a page needs to show the
    amount and the outcome. No client secret, no customer data, no metadata or order id, and not the merchant's
    return URLs, which often carry order data (docs/decisions/security.md, "Public endpoints")."""

    model_config = ConfigDict(defer_build=True)  # built on first use: see _LAZY
    id: str
    object: str = "payment_intent"
    status: IntentStatus
    amount: int
    currency: str
    merchant_name: str
    description: str | None
    remaining_attempts: int
    payment_id: str | None = Field(description="The payment, once the intent is paid (status succeeded)")
    livemode: bool
    expires_at: str


def public_read(view: dict[str, Any]) -> dict[str, Any]:
    """``GET /public/payment-intents/{id}``: exactly the fields of ``PublicPaymentIntent``, whatever the view holds."""
    return {name: view[name] for name in PublicPaymentIntent.model_fields}


class ConfirmedPaymentIntent(PublicPaymentIntent):
    """Confirm's answer, to the holder of the client secret: the return URLs too."""

    success_url: str = Field(description="Where the customer lands after paying ({CHECKOUT_SESSION_ID} filled in)")
    cancel_url: str
    payment_id: str
    payment_status: str
    redirect_url: str = Field(description="Where to send the customer now: success_url with payment_intent=pi_... "
                                          "appended; while status is requires_action, the authentication page")
    next_action: dict[str, Any] | None = Field(
        default=None, description="While status is requires_action (3-D Secure): {type: redirect_to_url, "
                                  "redirect_to_url: {url, return_url}}; send the customer to url (the hosted "
                                  "checkout page adds its client_secret, so a failed attempt comes back to it)")


INTENT_ERRORS: dict[int, str] = {
    400: "Invalid request: the error names the field (`param`); `INTENT_COMPLETED` when cancelling a paid intent",
    401: "Missing or invalid API key; on public endpoints a wrong client secret (`INVALID_CLIENT_SECRET`)",
    402: "Card declined (`PAYMENT_DECLINED`); `remaining_attempts` says how many tries are left",
    404: "No such payment intent (for this merchant and mode)",
    409: "The intent is not waiting for a payment (already succeeded or canceled, or its customer is authenticating "
         "with their bank), or a race was lost",
    410: "`INTENT_EXPIRED` past expires_at; `MAX_ATTEMPTS_REACHED` after five declines",
}


def intent_responses(model: type[BaseModel], *codes: int, status: int = 200, message: bool = False) -> dict[int, Any]:
    """Success at ``status`` plus exactly the listed codes, described for payment intents."""
    return described(model, status, {code: INTENT_ERRORS[code] for code in codes}, message=message)
