"""Every error a merchant can see, in one place.

Each class carries its HTTP status and a stable machine code; the HTTP layer maps them
once (``tahsil.api.http``), so no handler picks a status code by itself.
"""

from __future__ import annotations

from typing import Any


class TahsilError(Exception):
    """Base of all errors that become an API error envelope."""

    http_status = 400
    code = "BAD_REQUEST"
    # A refusal that can pass if the same request is sent again later (a race, a limit, a modification still
    # pending, a connector not configured yet): answered with ``"retryable": true`` and never stored under the
    # Idempotency-Key, so the same-key retry runs again instead of replaying the refusal (docs/decisions/idempotency.md).
    retryable = False

    def __init__(self, message: str, *, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "param": self.param}
        error.update(self.extra)
        if self.retryable:
            error["retryable"] = True
        return error


class InvalidRequest(TahsilError):
    http_status = 400
    code = "INVALID_REQUEST"


class AmountTooHigh(InvalidRequest):
    code = "AMOUNT_TOO_HIGH"


class MethodNotAllowed(TahsilError):
    """The path exists, the method does not: 405 with ``Allow`` naming the methods it has."""

    http_status = 405
    code = "METHOD_NOT_ALLOWED"

    def __init__(self, message: str, *, allow: list[str], **extra: Any) -> None:
        super().__init__(message, **extra)
        self.headers = {"Allow": ", ".join(allow)}


class PayloadTooLarge(TahsilError):
    http_status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(TahsilError):
    http_status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class Unauthenticated(TahsilError):
    http_status = 401
    code = "UNAUTHENTICATED"


class Forbidden(TahsilError):
    http_status = 403
    code = "FORBIDDEN"


class PaymentDeclined(TahsilError):
    http_status = 402
    code = "PAYMENT_DECLINED"


class NotFound(TahsilError):
    http_status = 404
    code = "NOT_FOUND"


class Conflict(TahsilError):
    """The object is not in a state that allows the action (already captured, voided...)."""

    http_status = 409
    code = "INVALID_STATE"


class IdempotencyConflict(TahsilError):
    http_status = 409
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgress(TahsilError):
    http_status = 409
    code = "IDEMPOTENCY_IN_PROGRESS"
    retryable = True


class ConcurrentUpdate(TahsilError):
    """Lost an optimistic-concurrency race too many times; safe to retry (with the same Idempotency-Key, if one
    was sent: the HTTP layer words the message for the request, ``tahsil.api.http``)."""

    http_status = 409
    code = "CONCURRENT_UPDATE"
    retryable = True


class Gone(TahsilError):
    http_status = 410
    code = "GONE"


class AuthorizationExpired(Gone):
    code = "AUTHORIZATION_EXPIRED"


class RateLimited(TahsilError):
    http_status = 429
    code = "RATE_LIMITED"
    retryable = True


# ---------------------------------------------------------------- payment intents (tahsil.payments.intents)


class InvalidClientSecret(Unauthenticated):
    code = "INVALID_CLIENT_SECRET"


class IntentCompleted(InvalidRequest):
    """The seed answers 400 to cancelling a payment intent that has already been paid."""

    code = "INTENT_COMPLETED"


class IntentExpired(Gone):
    code = "INTENT_EXPIRED"


class MaxAttemptsReached(Gone):
    code = "MAX_ATTEMPTS_REACHED"


# ---------------------------------------------------------------- developer platform (tahsil.api.auth, ratelimit)


class MissingScope(Forbidden):
    code = "MISSING_SCOPE"


class LiveKeyRequired(Forbidden):
    """A live-only power (the payout bank account) asked for with a test key or a role that lacks it."""

    code = "LIVE_KEY_REQUIRED"


class MfaStepUpRequired(Forbidden):
    """A live power from a dashboard session that has not passed MFA within the last 15 minutes."""

    code = "MFA_STEP_UP_REQUIRED"


class IpNotAllowed(Forbidden):
    code = "IP_NOT_ALLOWED"


class KeyTypeNotAllowed(Forbidden):
    code = "PUBLISHABLE_KEY_NOT_ALLOWED"


class LiveModeNotEnabled(Forbidden):
    """A live key (or a dashboard user in live mode) tried to create a payment before go-live approval."""

    code = "LIVE_MODE_NOT_ENABLED"
    retryable = True  # go-live approval makes the same request pass


class SignatureRequired(Unauthenticated):
    code = "SIGNATURE_REQUIRED"


class SignatureTimestampInvalid(Unauthenticated):
    """Tahsil-Timestamp is missing its digits, or outside the tolerated clock drift."""

    code = "SIGNATURE_TIMESTAMP_INVALID"


class SignatureMismatch(Unauthenticated):
    code = "SIGNATURE_MISMATCH"


class RateLimitExceeded(RateLimited):
    """429 with the limiter's headers (Retry-After, X-RateLimit-*), which the HTTP layer sends."""

    def __init__(self, message: str, *, headers: dict[str, str], **extra: Any) -> None:
        super().__init__(message, **extra)
        self.headers = headers


# ---------------------------------------------------------------- processor connectors (tahsil.payments.processing)


class TestCardInLiveMode(PaymentDeclined):
    """A seed test card sent with a live key: declined before any processor is called."""

    code = "TEST_CARD_IN_LIVE_MODE"


class LiveConnectorNotConfigured(Forbidden):
    """A live payment for a merchant whose operator has not configured a processor connector: never approved."""

    code = "LIVE_CONNECTOR_NOT_CONFIGURED"
    retryable = True  # the operator may set one; the same request then succeeds


class PaymentProcessing(TahsilError):
    """The processor's answer is not known yet (timeout, crash): 202 with the payment in a pending state.

    Not an error and not a final answer: the HTTP layer sends ``{"success": true, "data": payment}``
    with 202 and keeps no idempotency record, so a retry with the same Idempotency-Key asks again
    and gets the eventual outcome.
    """

    http_status = 202
    code = "PAYMENT_PROCESSING"
    retryable = True

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__("the processor's answer is not known yet; retry with the same Idempotency-Key or wait for the "
                         "webhook")
        self.data = data


class ModificationPending(Conflict):
    """A capture, void or refund is acknowledged by the processor and waits for its confirmation."""

    code = "MODIFICATION_PENDING"
    retryable = True


class ProcessorRefused(Conflict):
    """The processor refused a capture, void or refund outright; the payment is unchanged."""

    code = "PROCESSOR_REFUSED"
