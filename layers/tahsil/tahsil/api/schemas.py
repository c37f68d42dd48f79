"""The HTTP contract's standard answers, for the OpenAPI document (the domain renders plain dicts)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tahsil.kernel.models import described

_ERRORS = {
    400: "Invalid request: the error names the field (`param`) and the reason",
    401: "Missing, unknown, revoked or expired API key; a missing, stale or wrong request signature",
    403: "The key lacks the route's scope, is publishable, or the request comes from outside its IP allowlist; "
         "live payments: `LIVE_CONNECTOR_NOT_CONFIGURED` (no processor connector set for the account)",
    402: "Payment declined by the issuer or the fraud rules; the payment is stored as failed. Live mode: "
         "`TEST_CARD_IN_LIVE_MODE` for a seed test card (nothing stored, no processor called)",
    404: "No such object for this merchant and mode",
    409: "Wrong state, idempotency key reused with other data, or a duplicate still in flight",
    410: "The authorization has expired",
    429: "Rate limit exceeded: see Retry-After and X-RateLimit-Limit / -Remaining / -Reset",
}


def responses(model: type[BaseModel], *codes: int, status: int = 200) -> dict[int, Any]:
    """Success at ``status``, plus 400, 401, 403, the route's own ``codes`` and 429."""
    return described(model, status, {code: _ERRORS[code] for code in (400, 401, 403, *codes, 429)})


PROCESSING = ("Live payments through a processor connector: the processor's answer is not known yet (timeout). The "
              "payment is `processing` (or the capture/void/refund pending, `pending_action`); nothing is stored under "
              "the Idempotency-Key, so retrying with it returns the eventual outcome, and the webhook fires when it "
              "settles")


def processor_responses(model: type[BaseModel], *codes: int) -> dict[int, Any]:
    """``responses`` plus the 202 a live payment may answer while its processor's outcome is unknown."""
    out = responses(model, *codes)
    out[202] = {"description": PROCESSING, "content": out[200]["content"]}
    return out
