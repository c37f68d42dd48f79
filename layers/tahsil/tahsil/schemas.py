"""Response shapes, for the OpenAPI document (the domain renders them as plain dicts)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class Payment(BaseModel):
    id: str
    object: str = "payment"
    status: str
    amount: int
    currency: str
    captured_amount: int
    refunded_amount: int
    remaining_amount: int
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


class Transaction(BaseModel):
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
    object: str = "list"
    payments: list[Payment]
    has_more: bool
    limit: int
    next_starting_after: str | None


class TransactionList(BaseModel):
    transactions: list[Transaction]
    total: int
    limit: int
    offset: int


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    data: T


class Error(BaseModel):
    code: str
    message: str
    param: str | None
    request_id: str | None


class ErrorEnvelope(BaseModel):
    success: bool = False
    error: Error


_ERRORS = {
    400: "Invalid request: the error names the field (`param`) and the reason",
    401: "Missing, unknown, revoked or expired API key; a missing, stale or wrong request signature",
    403: "The key lacks the route's scope, is publishable, or the request comes from outside its IP allowlist",
    402: "Payment declined by the issuer or the fraud rules; the payment is stored as failed",
    404: "No such object for this merchant and mode",
    409: "Wrong state, idempotency key reused with other data, or a duplicate still in flight",
    410: "The authorization has expired",
    429: "Rate limit exceeded: see Retry-After and X-RateLimit-Limit / -Remaining / -Reset",
}


def responses(model: type[BaseModel], *codes: int, status: int = 200) -> dict[int, Any]:
    out: dict[int, Any] = {status: {"description": "OK", "content": {"application/json": {"model": Envelope[model]}}}}
    for code in (400, 401, 403, *codes, 429):
        out[code] = {"description": _ERRORS[code], "content": {"application/json": {"model": ErrorEnvelope}}}
    return out
