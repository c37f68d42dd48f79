"""Who is calling: an API key becomes a Principal (merchant, mode, key) or a 401."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tahsil import crypto, dal
from tahsil.errors import Unauthenticated

KEY_PATTERN = re.compile(r"^(sk|pk)_(test|live)_[A-Za-z0-9]{24,64}$")
LATEST_API_VERSION = "2026-06-14.basra"


@dataclass(frozen=True)
class Principal:
    merchant_id: str
    mode: str  # "test" | "live"
    key_id: str
    key_type: str  # "secret" | "publishable"
    api_version: str = LATEST_API_VERSION
    merchant_name: str = ""

    @property
    def livemode(self) -> bool:
        return self.mode == "live"

    @property
    def owner(self) -> str:
        """The partition every object of this merchant and mode lives in."""
        return f"{self.merchant_id}#{self.mode}"


def presented_key(headers: dict[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    key = lowered.get("x-api-key")
    if key:
        return key.strip()
    bearer = lowered.get("authorization", "")
    if bearer[:7].lower() == "bearer ":
        return bearer[7:].strip()
    return None


def authenticate(headers: dict[str, str], *, allow: frozenset[str] = frozenset({"secret"})) -> Principal:
    key = presented_key(headers)
    if not key:
        raise Unauthenticated("missing API key: send it in the X-API-Key header (or Authorization: Bearer)")
    if not KEY_PATTERN.match(key):
        raise Unauthenticated("invalid API key")
    key_hash = crypto.hash_secret(key)
    item = dal.get(dal.credentials_table(), f"KEY#{key_hash}", "KEY", consistent=True)
    # One read, then a constant-time compare of the stored hash with the presented key's.
    if item is None or not crypto.same_secret(item["key_hash"], key) or item.get("status") != "active":
        raise Unauthenticated("invalid API key")
    if item["type"] not in allow:
        raise Unauthenticated(f"a {item['type']} key cannot be used on this endpoint; use a secret key (sk_...)")
    return Principal(
        merchant_id=item["merchant_id"],
        mode=item["mode"],
        key_id=item["key_id"],
        key_type=item["type"],
        api_version=item.get("api_version", LATEST_API_VERSION),
        merchant_name=item.get("merchant_name", ""),
    )
