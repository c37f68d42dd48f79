"""Helpers for the developer-console tests: dashboard users and their tokens, calls by route, webhook pipeline."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.lambdas import Answer, invoke, load_event

# events/ file -> template function
FUNCTIONS = {
    "overview-get": "GetOverviewFunction",
    "account-get": "GetAccountFunction",
    "account-update": "UpdateAccountFunction",
    "go-live-get": "GetGoLiveFunction",
    "go-live-reviews-create": "RequestGoLiveReviewFunction",
    "payments-trace": "TracePaymentFunction",
    "payments-fulfillment": "FulfillPaymentFunction",
    "webhook-endpoints-deliveries": "ListEndpointDeliveriesFunction",
    "dashboard-page": "DashboardFunction",
    "dashboard-asset": "DashboardFunction",
    "dashboard-session": "DashboardSessionFunction",
    "payments-authorize": "AuthorizePaymentFunction",
    "payments-sale": "SalePaymentFunction",
    "payments-capture": "CapturePaymentFunction",
    "payments-get": "GetPaymentFunction",
    "payment-intents-create": "CreatePaymentIntentFunction",
    "api-keys-create": "CreateApiKeyFunction",
    "api-keys-list": "ListApiKeysFunction",
    "webhook-endpoints-create": "CreateWebhookEndpointFunction",
    "webhook-endpoints-test": "TestWebhookEndpointFunction",
    "request-logs-list": "ListRequestLogsFunction",
    "public-payment-intents-confirm": "ConfirmPaymentIntentFunction",
}
PASSWORD = "Correct-horse-42-battery"


def call(name: str, key: str | None = None, *, token: str | None = None, mode: str | None = None, body: Any = None,
         path_id: str | None = None, query: dict[str, str] | None = None, idem: str | None = None,
         headers: dict[str, str] | None = None) -> Answer:
    """Invoke the route's function with its sample event, as an API key (``key``) or a dashboard user (``token``)."""
    event = load_event(name, key=key, body=body, path_id=path_id, query=query, headers=headers)
    for h in ("X-API-Key", "Idempotency-Key"):
        if h == "X-API-Key" and key is not None:
            continue
        event["headers"].pop(h, None)
        event["multiValueHeaders"].pop(h, None)
    if idem:
        event["headers"]["Idempotency-Key"] = idem
        event["multiValueHeaders"]["Idempotency-Key"] = [idem]
    if token is not None:
        event["headers"]["Authorization"] = f"Bearer {token}"
        event["multiValueHeaders"]["Authorization"] = [f"Bearer {token}"]
    if mode is not None:
        event["headers"]["Tahsil-Mode"] = mode
        event["multiValueHeaders"]["Tahsil-Mode"] = [mode]
    return invoke(FUNCTIONS[name], event)


def page(name: str, **over: Any) -> tuple[int, dict[str, str], str]:
    """A non-JSON route (the dashboard page and assets): status, lower-cased headers, body text."""
    import uuid

    from tahsil_local.gateway import LambdaContext
    from tests.support.lambdas import handler_of

    event = load_event(name)
    event.update(over)
    raw = handler_of(FUNCTIONS[name])(event, LambdaContext(name, 512, str(uuid.uuid4()), time.monotonic() + 15))
    headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
    headers |= {k.lower(): vs[-1] for k, vs in (raw.get("multiValueHeaders") or {}).items()}
    return raw["statusCode"], headers, raw.get("body") or ""


def moto_jwks() -> dict[str, Any]:
    from moto.cognitoidp.responses import CognitoIdpJsonWebKeyResponse

    return json.loads(CognitoIdpJsonWebKeyResponse.json_web_key)


def new_user(merchant_id: str, email: str = "staff@shop.example", role: str = "owner") -> str:
    from tahsil.identity import users

    users.create_user(email, merchant_id, temporary_password=PASSWORD, permanent=True, role=role)
    return email


def sign_in(email: str, password: str = PASSWORD) -> str:
    """The session's access token (what the dashboard sends as Authorization: Bearer)."""
    from tahsil.identity import sessions

    return sessions.sign_in(email, password)["access_token"]


def pool_key() -> Any:
    """moto's signing key for the dashboard pool (to mint tokens with chosen claims)."""
    from moto.cognitoidp.models import cognitoidp_backends

    from tahsil.identity import cognito

    pool_id, _ = cognito.pool()
    return cognitoidp_backends["123456789012"]["us-east-1"].user_pools[pool_id].json_web_key


def mint(claims: dict[str, Any], *, header: dict[str, Any] | None = None, key: Any = None) -> str:
    from joserfc import jwt

    return jwt.encode(header or {"alg": "RS256", "kid": "dummy"}, claims, key or pool_key())


def claims_for(merchant_id: str, **over: Any) -> dict[str, Any]:
    from tahsil.identity import cognito

    pool_id, client_id = cognito.pool()
    now = int(time.time())
    return {"iss": cognito.issuer(pool_id), "sub": "0b7d6c3e-1111-4222-8333-944455556666", "client_id": client_id,
            "token_use": "access", "iat": now, "auth_time": now, "exp": now + 3600,
            "username": "0b7d6c3e-1111-4222-8333-944455556666", "scope": "aws.cognito.signin.user.admin", **over}
