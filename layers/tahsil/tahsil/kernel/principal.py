"""Who a request acts for: the merchant, the mode, the key, and what that key may do.

A ``Principal`` is a frozen value with no I/O. ``tahsil.identity.principals`` builds it from an API
key row or a dashboard session; it is handed to every domain call, and the domain never sees the
HTTP request. It stays in the kernel (not in ``tahsil.identity``) because every package takes one,
the store's guards and the payments and webhooks packages included, and those sit beside or below
identity. The scope names live here for the same reason: keys (``tahsil.identity.keys``), the
guards (``tahsil.store.guards``) and the route table (``tahsil.api.auth.ROUTE_SCOPES``) all speak
them. Who holds which scopes (dashboard roles) is identity's policy: ``tahsil.identity.roles``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tahsil.kernel import versions
from tahsil.kernel.errors import MissingScope

LATEST_API_VERSION = versions.LATEST

SCOPES: dict[str, str] = {
    "payments:create": "authorize and sale",
    "payments:write": "capture and void",
    "payments:read": "read payments and transactions",
    "refunds:create": "refund payments",
    "payment_intents:write": "create and cancel payment intents",
    "payment_intents:read": "read payment intents",
    "webhooks:write": "manage webhook endpoints, redeliver events",
    "webhooks:read": "read webhook endpoints",
    "events:read": "read events and their deliveries",
    "keys:write": "create, roll and revoke API keys",
    "keys:read": "list API keys, read the credential guards",
    "logs:read": "read request logs",
    "account:read": "read the account: profile, API version, go-live readiness, overview",
    "account:write": "change the account: profile, API version, request a go-live review",
    "payouts:write": "change the payout bank account (a live secret key, or an owner's session that passed MFA)",
}
ALL_SCOPES: frozenset[str] = frozenset(SCOPES)


@dataclass(frozen=True)
class Principal:
    merchant_id: str
    mode: str  # "test" | "live"
    key_id: str
    key_type: str  # "secret" | "publishable" | "client_secret" (public endpoints)
    api_version: str = LATEST_API_VERSION
    merchant_name: str = ""
    scopes: frozenset[str] = field(default_factory=frozenset)
    rate_limits: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    live_enabled: bool = False  # go-live approved (tahsil.console.golive): live keys may create payments
    role: str | None = None  # a dashboard user's role (key_type "dashboard"); None for keys
    session: str | None = field(default=None, repr=False)  # a dashboard session's token digest (its MFA step-up)
    user: str | None = None  # a dashboard user's email, for audit trails

    @property
    def livemode(self) -> bool:
        return self.mode == "live"

    @property
    def owner(self) -> str:
        """The partition every object of this merchant and mode lives in."""
        return f"{self.merchant_id}#{self.mode}"

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise MissingScope(f"this API key lacks the scope {scope!r}", param=None, required_scope=scope)
