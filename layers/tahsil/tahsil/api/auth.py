"""Who is calling, and may they: an API key becomes a Principal, or a 401 / 403 that says why.

One key lookup (a strongly consistent GetItem by the key's keyed hash, then a
constant-time compare) brings everything the checks need, in this order:

1. the key exists, is active, and (when rolled with a grace period) has not expired: else 401;
2. its type: publishable keys (``pk_``) work only on the public endpoints: else 403;
3. the IP allowlist, against API Gateway's ``requestContext.identity.sourceIp``: else 403;
4. the request signature, when the key requires signing (``tahsil.identity.signing``): else 401 naming
   what failed (missing headers, timestamp, clock drift, mismatch);
5. the scope the route needs (``ROUTE_SCOPES``, the one table of route -> scope): else 403;
6. live payments (``LIVE_GATED_ROUTES``) only once go-live is approved: else 403
   ``LIVE_MODE_NOT_ENABLED``. The approval is copied onto the key row (``live_enabled``), so
   this costs no extra read (``tahsil.console.golive``).

Dashboard users (``Authorization: Bearer <Cognito access token>``, ``tahsil.identity.cognito``) are
checked by the token's signature and claims and by Cognito (is the session still alive) instead,
act for their merchant in the mode named by ``Tahsil-Mode`` (default test) with the scopes of their
role in that mode (``role_scopes``: owner, developer, viewer; a developer has no live powers), and pass the
same route checks (5 and 6); an owner without TOTP MFA is refused where the deployment requires it (403
``MFA_REQUIRED``), and a live power (``STEP_UP_ROUTES``) needs a session that passed MFA in the last 15
minutes (403 ``MFA_STEP_UP_REQUIRED``).
"""

from __future__ import annotations

import base64
import ipaddress
import time
from typing import Any, NamedTuple

from tahsil.identity import keys, principals, signing
from tahsil.identity.roles import ROLE_SCOPES
from tahsil.kernel.errors import (
    InvalidRequest,
    IpNotAllowed,
    KeyTypeNotAllowed,
    LiveModeNotEnabled,
    MissingScope,
    Unauthenticated,
)
from tahsil.kernel.principal import Principal

KEY_PATTERN = keys.KEY_PATTERN


# Route (method, API Gateway resource path) -> the scope it needs. Every /v1 route has one.
ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("POST", "/v1/payments/authorize"): "payments:create",
    ("POST", "/v1/payments/sale"): "payments:create",
    ("POST", "/v1/payments/{id}/capture"): "payments:write",
    ("POST", "/v1/payments/{id}/void"): "payments:write",
    ("POST", "/v1/payments/{id}/refund"): "refunds:create",
    ("GET", "/v1/payments"): "payments:read",
    ("GET", "/v1/payments/{id}"): "payments:read",
    ("GET", "/v1/transactions"): "payments:read",
    ("GET", "/v1/transactions/{id}"): "payments:read",
    ("GET", "/v1/balance"): "payments:read",
    ("GET", "/v1/balance-transactions"): "payments:read",
    ("GET", "/v1/balance-transactions/{id}"): "payments:read",
    ("POST", "/v1/api-keys"): "keys:write",
    ("GET", "/v1/api-keys"): "keys:read",
    ("POST", "/v1/api-keys/{id}/roll"): "keys:write",
    ("DELETE", "/v1/api-keys/{id}"): "keys:write",
    ("GET", "/v1/request-logs"): "logs:read",
    ("GET", "/v1/credential-guards"): "keys:read",
    ("GET", "/v1/api-versions"): "account:read",
    ("POST", "/v1/account/api-version"): "account:write",
    ("POST", "/v1/test-helpers/payments/{id}/advance"): "payments:write",
    ("POST", "/v1/test-helpers/payment-intents/{id}/advance"): "payment_intents:write",
    ("GET", "/v1/overview"): "logs:read",
    ("GET", "/v1/account"): "account:read",
    ("PATCH", "/v1/account"): "account:write",
    ("GET", "/v1/go-live"): "account:read",
    ("POST", "/v1/go-live/reviews"): "account:write",
    ("GET", "/v1/payments/{id}/trace"): "payments:read",
    ("POST", "/v1/payments/{id}/fulfillment"): "payments:write",
}
# Routes that move live money: a live key may call them only once go-live is approved.
LIVE_GATED_ROUTES: frozenset[tuple[str, str]] = frozenset({
    ("POST", "/v1/payments/authorize"), ("POST", "/v1/payments/sale"), ("POST", "/v1/payment-intents"),
})
# Live powers a dashboard session uses only within 15 minutes of passing MFA (live mode; the role must hold the
# scope in live mode too: tahsil.identity.roles.role_scopes). PATCH /v1/account's payout details are checked
# where the body is known (tahsil.console.profile).
STEP_UP_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/api-keys"): "creating a live secret key",
    ("POST", "/v1/api-keys/{id}/roll"): "rolling a live key",
    ("POST", "/v1/payments/{id}/refund"): "refunding a live payment",
}
DASHBOARD_MODE_HEADER = "tahsil-mode"
# Families whose routes are read (GET) or write (anything else) as a whole: a new route in them
# needs no entry above. Longest prefix first.
FAMILY_SCOPES: tuple[tuple[str, str, str], ...] = (
    ("/v1/payment-intents", "payment_intents:read", "payment_intents:write"),
    ("/v1/webhook-endpoints", "webhooks:read", "webhooks:write"),
    ("/v1/events", "events:read", "webhooks:write"),
    ("/v1/test-helpers/payment-intents", "payment_intents:read", "payment_intents:write"),
    ("/v1/test-helpers/payments", "payments:read", "payments:write"),
)
# /v1 routes that take no key at all.
OPEN_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/v1/openapi.json")})


def _now() -> float:
    return time.time()


def required_scope(method: str, resource: str) -> str | None:
    found = ROUTE_SCOPES.get((method.upper(), resource))
    if found:
        return found
    for prefix, read, write in FAMILY_SCOPES:
        if resource == prefix or resource.startswith(prefix + "/"):
            return read if method.upper() in ("GET", "HEAD") else write
    return None


class RequestFacts(NamedTuple):
    """What of the HTTP request the checks look at (from the API Gateway proxy event)."""

    method: str
    path: str
    resource: str
    query: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str | None
    headers: dict[str, str]

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> RequestFacts:
        body = event.get("body") or ""
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
        multi = event.get("multiValueQueryStringParameters") or {}
        single = event.get("queryStringParameters") or {}
        pairs = [(k, v) for k, vs in multi.items() for v in (vs or [])] if multi else list(single.items())
        context = event.get("requestContext") or {}
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
        return cls(
            method=str(event.get("httpMethod", "")).upper(),
            path=str(event.get("path", "")),
            resource=str(event.get("resource") or context.get("resourcePath") or event.get("path", "")),
            query=tuple(pairs),
            body=raw,
            source_ip=(context.get("identity") or {}).get("sourceIp"),
            headers=headers,
        )


def presented_key(headers: dict[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    key = lowered.get("x-api-key")
    if key:
        return key.strip()
    bearer = lowered.get("authorization", "")
    if bearer[:7].lower() == "bearer ":
        return bearer[7:].strip()
    return None


def in_allowlist(source_ip: str | None, allowlist: list[str]) -> bool:
    if not source_ip:
        return False
    try:
        address = ipaddress.ip_address(source_ip.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for entry in allowlist:
        try:
            network = ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            continue  # an invalid legacy entry matches nothing (the audit reports it)
        if network.version == address.version and address in network:
            return True
    return False


def _signature(item: dict[str, Any], request: RequestFacts, audit: dict[str, Any]) -> None:
    check = signing.check_key(item, method=request.method, path=request.path, query=request.query, body=request.body,
                              headers=request.headers, now=_now())
    audit["signature"] = check.record()
    signing.enforce(check)


def principal_of(item: dict[str, Any]) -> Principal:
    return principals.of_key(item)


def _route_checks(principal: Principal, request: RequestFacts) -> None:
    scope = required_scope(request.method, request.resource)
    if scope is None:
        raise MissingScope(f"no scope is defined for {request.method} {request.resource}; refusing by default",
                           required_scope=None)
    principal.require(scope)
    if principal.livemode and not principal.live_enabled and (request.method, request.resource) in LIVE_GATED_ROUTES:
        raise LiveModeNotEnabled("live payments are not enabled for this account yet. Ask for a go-live review "
                                 "(POST /v1/go-live/reviews, or Request review on the dashboard's Go-live page; "
                                 "GET /v1/go-live shows the checklist); once an operator approves it, live keys "
                                 "take payments from the next request. Until then use your test key (sk_test_...)")


def _dashboard(token: str, headers: dict[str, str], request: RequestFacts | None, audit: dict[str, Any]) -> Principal:
    """A signed-in dashboard user: the merchant from the verified token, the mode from Tahsil-Mode."""
    from tahsil.identity import cognito

    claims = cognito.verify(token)
    role = cognito.role_of(claims)
    mode = (headers.get(DASHBOARD_MODE_HEADER) or "test").strip().lower()
    if mode not in ("test", "live"):
        raise InvalidRequest("Tahsil-Mode must be test or live", param="Tahsil-Mode")
    audit["user"] = cognito.user_label(claims)
    audit["merchant_id"], audit["mode"] = claims[cognito.MERCHANT_CLAIM], mode
    cognito.require_mfa(claims)
    principal = principals.of_session(token, claims, mode)
    if request is not None:
        try:
            _route_checks(principal, request)
        except MissingScope as exc:
            scope = exc.extra.get("required_scope")
            if scope is None:
                raise
            where = " in live mode (a developer builds in test mode)" if scope in ROLE_SCOPES[role] else ""
            raise MissingScope(f"your dashboard role {role!r} lacks the scope {scope!r}{where}; ask an owner or an "
                               "operator", required_scope=scope) from None
        power = STEP_UP_ROUTES.get((request.method, request.resource))
        if power is not None and mode == "live":
            from tahsil.identity import sessions

            sessions.require_recent_mfa(principal, power)
    return principal


def authenticate(headers: dict[str, str], *, allow: frozenset[str] = frozenset({"secret"}),
                 request: RequestFacts | None = None, audit: dict[str, Any] | None = None) -> Principal:
    """The key in ``headers``, checked against ``request`` (IP, signature, route scope).

    Without ``request`` (a caller that has no event at hand) a key bound to an IP allowlist
    or to request signing is refused: those checks cannot be skipped.
    """
    audit = audit if audit is not None else {}
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    bearer = lowered.get("authorization", "")
    if bearer[:7].lower() == "bearer " and bearer[7:].strip().startswith("eyJ"):
        return _dashboard(bearer[7:].strip(), lowered, request, audit)
    key = presented_key(headers)
    if not key:
        raise Unauthenticated("missing API key: send it in the X-API-Key header (or Authorization: Bearer)")
    item = keys.lookup(key)  # one strongly consistent read, then a constant-time compare
    if item is None:
        raise Unauthenticated("invalid API key")
    audit["key_id"] = item["key_id"]
    audit["merchant_id"], audit["mode"] = item["merchant_id"], item["mode"]
    keys.require_usable(item, _now())
    if item["type"] not in allow:
        if item["type"] == "publishable":
            raise KeyTypeNotAllowed("a publishable key (pk_...) works only on the public endpoints; use a secret key (sk_...)")
        raise KeyTypeNotAllowed(f"a {item['type']} key cannot be used on this endpoint")
    allowlist = item.get("ip_allowlist") or []
    signed = bool((item.get("signing") or {}).get("required"))
    if request is None:
        if allowlist or signed:
            raise Unauthenticated("this API key needs the request's source address and signature, which were not available")
        return principal_of(item)
    if allowlist and not in_allowlist(request.source_ip, allowlist):
        raise IpNotAllowed(f"requests from {request.source_ip or 'an unknown address'} are not in this API key's IP allowlist")
    if signed:
        _signature(item, request, audit)
    principal = principal_of(item)
    _route_checks(principal, request)
    return principal


def authenticate_event(event: dict[str, Any], *, audit: dict[str, Any] | None = None) -> Principal:
    request = RequestFacts.from_event(event)
    return authenticate(request.headers, request=request, audit=audit)
