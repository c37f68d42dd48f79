"""Request and response models of the developer console: account, guards report, go-live, overview, trace.

API keys, API versions and the dashboard's sign-in form are identity's: ``tahsil.identity.models``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from tahsil.kernel.models import CURRENCY_FORM, EMAIL_FORM, Strict, worded


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


Name = Annotated[str, StringConstraints(min_length=2, max_length=140)]
_EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_PHONE = r"^\+[1-9][0-9]{6,14}$"
_HTTPS_URL = r"^https://[^\s/$.?#][^\s]*$"
_MCC = r"^(07[4-9][0-9]|0[89][0-9]{2}|[1-9][0-9]{3})$"
_CURRENCY = r"^[A-Z]{3}$"
Email = Annotated[str, StringConstraints(max_length=254, pattern=_EMAIL), worded(_EMAIL, EMAIL_FORM)]
Phone = Annotated[str, StringConstraints(pattern=_PHONE),
                  worded(_PHONE, "must be a phone number in E.164 form: +, the country code and the number, "
                                 "7 to 15 digits in all, such as +9647701234567"),
                  Field(description="E.164: + and country code, 7 to 15 digits", examples=["+9647701234567"])]
HttpsUrl = Annotated[str, StringConstraints(max_length=2048, pattern=_HTTPS_URL),
                     worded(_HTTPS_URL, "must be an https:// URL such as https://shop.example/support")]
Mcc = Annotated[str, StringConstraints(pattern=_MCC),
                worded(_MCC, "must be a 4-digit ISO 18245 merchant category code from 0742 to 9999, such as 5999"),
                Field(description="ISO 18245 merchant category code, 4 digits (0742-9999)", examples=["8220"])]


class PayoutDestinationUpdate(Strict):
    """Bank details for payouts: an IBAN for IBAN currencies (EUR, TRY, MAD, IQD, ...), ABA details for USD."""

    currency: Annotated[str, worded(_CURRENCY, CURRENCY_FORM), BeforeValidator(_upper), StringConstraints(pattern=_CURRENCY)]
    account_holder_name: Name
    bank_name: Annotated[str, StringConstraints(min_length=2, max_length=140)] | None = None
    iban: Annotated[str, StringConstraints(max_length=42)] | None = None
    routing_number: Annotated[str, StringConstraints(max_length=12)] | None = None
    account_number: Annotated[str, StringConstraints(max_length=24)] | None = None
    account_type: Literal["checking", "savings"] | None = None


class AccountUpdate(Strict):
    """Only the fields sent change; ``null`` clears an optional one."""

    legal_name: Name | None = None
    mcc: Mcc | None = None
    support_email: Email | None = None
    support_phone: Phone | None = None
    support_url: HttpsUrl | None = None
    payout_destination: PayoutDestinationUpdate | None = None


class GoLiveReviewRequest(Strict):
    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class FulfillmentCreate(Strict):
    reference: Annotated[str, StringConstraints(min_length=1, max_length=100),
                         Field(description="your order or fulfillment reference", examples=["SCH-2026-00041"])]
    note: Annotated[str, StringConstraints(max_length=500)] | None = None


# ---------------------------------------------------------------- response shapes (OpenAPI)


class PayoutDestination(BaseModel):
    id: str
    currency: str
    scheme: Literal["iban", "aba"]
    country: str
    account_holder_name: str
    bank_name: str | None
    bank_code: str | None
    last4: str
    account_type: str | None
    status: Literal["unverified", "verified"] = Field(
        description="unverified until an operator has checked that the account is the business's own; the bank "
                    "checks prove only that the number is well formed")
    verified_at: str | None
    hold_until: str | None = Field(
        default=None, description="payouts wait until then after a change (72 h cooling-off); null for older rows")


class Account(BaseModel):
    id: str
    object: str = "account"
    name: str
    legal_name: str | None
    mcc: str | None
    support_email: str | None
    support_phone: str | None
    support_url: str | None
    profile_id: str | None
    payout_destination: PayoutDestination | None
    api_version: str
    live_enabled: bool
    created_at: str | None
    updated_at: str | None


class GoLiveCheck(BaseModel):
    id: str
    name: str
    status: Literal["passed", "failed"]
    mode: Literal["live", "test"]
    evidence_id: str | None
    detail: str


class GoLiveReview(BaseModel):
    id: str
    object: str = "go_live_review"
    status: Literal["requested", "approved", "rejected"]
    readiness: str
    score: int
    blocking_issues: list[dict[str, Any]]
    note: str | None
    requested_at: str
    requested_by: str | None
    decided_at: str | None
    decided_by: str | None
    reason: str | None


class GoLive(BaseModel):
    object: str = "go_live"
    status: Literal["not_ready", "ready_for_approval", "in_review", "approved"]
    live_enabled: bool
    score: int
    blocking_issues: list[dict[str, Any]]
    checks: list[GoLiveCheck]
    latest_review: GoLiveReview | None
    reviews: list[GoLiveReview]
    evaluated_at: str


class Overview(BaseModel):
    object: str = "overview"
    mode: str
    window: dict[str, Any]
    requests: dict[str, Any]
    latency_ms: dict[str, Any]
    buckets: list[dict[str, Any]]
    status_codes: list[dict[str, Any]]
    status_classes: dict[str, int]
    signatures: dict[str, Any]
    deliveries: dict[str, Any]
    limits: dict[str, Any]
    updated_at: str


class Trace(BaseModel):
    object: str = "payment_trace"
    payment: dict[str, Any]
    payment_intent: dict[str, Any] | None
    status: str
    handoff: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    ids: dict[str, list[str]]
    fulfillment: dict[str, Any] | None
    complete: bool


class Fulfillment(BaseModel):
    id: str
    object: str = "fulfillment"
    payment_id: str
    reference: str
    note: str | None
    created_at: str
    request_id: str | None
    recorded_by: str | None


# ---------------------------------------------------------------- the credential guards report


class GuardRule(BaseModel):
    name: str
    table: str
    type: str
    status: str
    enforcement: str
    blocks_future: bool
    description: str
    legacy_issues: int


class CredentialGuards(BaseModel):
    object: str = "credential_guards"
    healthy: bool
    installed: int
    total: int
    legacy_issues: int
    rules: list[GuardRule]
    legacy: list[dict[str, Any]]
