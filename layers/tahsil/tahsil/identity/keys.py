"""API keys: create (shown once), look up (authentication), list (prefix and last 4), roll, revoke.

A key is one CredentialsTable item, ``KEY#<keyed hash of the key>`` / ``KEY``, found by
authentication with one GetItem (``lookup``). The merchant's keys are listed through the ``by_merchant``
index (``gsi1pk = MER#<merchant>``). Revoking or rolling changes the item's ``status``; the
lookup reads strongly consistent, so the old key fails on the very next request. A roll with
``expires_in`` keeps the old item active with an ``expires_at`` that authentication enforces.

Keys carry copies of the merchant's API version pin and rate-limit overrides, so
authenticating a request needs no second read (``tahsil.identity.account`` keeps the copies current).

Guard rails: a key may only hand out scopes it holds itself, and key management stays inside its
mode, both ways: a test key (often less guarded) lists, creates, rolls and revokes test keys only,
and a live key live keys only. A key of the other mode is not found (404), as if it did not exist;
asking to create or list the other mode's keys is a 403 naming ``mode``. The dashboard picks its
mode with ``Tahsil-Mode``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from tahsil.identity import account, signing
from tahsil.kernel import clock
from tahsil.kernel.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthenticated
from tahsil.kernel.ids import looks_like, new_id, random_token
from tahsil.kernel.principal import ALL_SCOPES, Principal
from tahsil.store import crypto, dal

if TYPE_CHECKING:  # annotations only: authentication (``lookup``) needs no request models
    from tahsil.identity.models import ApiKeyCreate, ApiKeyRoll

KEY_PATTERN = re.compile(r"^(sk|pk)_(test|live)_[A-Za-z0-9]{24,64}$")


def new_key_item(merchant: dict[str, Any], *, mode: str, key_type: str, name: str, scopes: list[str] | frozenset[str],
                 ip_allowlist: list[str] | None = None, require_signing: bool = False,
                 now: dt.datetime | None = None) -> tuple[str, dict[str, Any], str | None]:
    """A new key: (the raw key, its table item, the signing secret or None). The raw values exist only here."""
    now = now or clock.now()
    prefix = "sk" if key_type == "secret" else "pk"
    raw = f"{prefix}_{mode}_{random_token(32)}"  # 32 base62 characters: ~190 bits
    key_hash = crypto.hash_secret(raw)
    key_id = new_id("key")
    item: dict[str, Any] = {
        "pk": f"KEY#{key_hash}", "sk": "KEY",
        "gsi1pk": f"MER#{merchant['merchant_id']}", "gsi1sk": f"KEY#{clock.sortable(now)}#{key_id}",
        "key_id": key_id, "key_hash": key_hash, "name": name, "merchant_id": merchant["merchant_id"],
        "merchant_name": merchant.get("name", ""), "api_version": merchant["api_version"],
        "mode": mode, "type": key_type, "status": "active",
        "prefix": raw[: len(prefix) + len(mode) + 2], "last4": raw[-4:], "created_at": clock.iso(now),
        "scopes": sorted(scopes), "ip_allowlist": list(ip_allowlist or []),
    }
    if merchant.get("rate_limits"):
        item["rate_limits"] = merchant["rate_limits"]
    if merchant.get("live_enabled"):
        item["live_enabled"] = True  # go-live approved (tahsil.console.golive); a later approval updates existing keys
    signing_secret = None
    if require_signing:
        nonce = signing.new_nonce()
        item["signing"] = {"required": True, "nonce": nonce, "enabled_at": clock.iso(now)}
        signing_secret = signing.secret_for(key_id, nonce)
    return raw, item, signing_secret


def _store(item: dict[str, Any]) -> None:
    dal.put(dal.credentials_table(), item, condition="attribute_not_exists(pk)")


def view(item: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or clock.now()
    status = item["status"]
    expires = item.get("expires_at")
    if status == "active" and expires is not None and now.timestamp() >= int(expires):
        status = "expired"
    return {
        "id": item["key_id"],
        "object": "api_key",
        "name": item.get("name", ""),
        "mode": item["mode"],
        "type": item["type"],
        "status": status,
        "prefix": item["prefix"],
        "last4": item["last4"],
        "scopes": list(item.get("scopes") or []),
        "ip_allowlist": list(item.get("ip_allowlist") or []),
        "require_signing": bool((item.get("signing") or {}).get("required")),
        "api_version": item.get("api_version"),
        "created_at": item["created_at"],
        "last_used_at": item.get("last_used_at"),
        "expires_at": clock.iso(dt.datetime.fromtimestamp(int(expires), dt.UTC)) if expires is not None else None,
        "revoked_at": item.get("revoked_at"),
        "rolled_to": item.get("rolled_to"),
    }


def _same_mode(p: Principal, mode: str) -> None:
    if mode != p.mode:
        raise Forbidden(f"a {p.mode} key manages {p.mode} keys only; use a {mode} key (or the dashboard in {mode} mode) "
                        f"for {mode} keys", param="mode")


def _check_grant(p: Principal, mode: str, scopes: list[str] | frozenset[str]) -> None:
    _same_mode(p, mode)
    beyond = sorted(set(scopes) - set(p.scopes))
    if beyond:
        raise Forbidden(f"a key cannot grant a scope it lacks: {beyond[0]!r}", param="scopes")


def create(p: Principal, req: ApiKeyCreate) -> dict[str, Any]:
    mode = req.mode or p.mode
    _check_grant(p, mode, req.scopes)
    if req.type == "publishable" and req.require_signing:
        raise InvalidRequest("publishable keys are used in browsers and cannot sign requests", param="require_signing")
    merchant = account.merchant(p.merchant_id)
    raw, item, signing_secret = new_key_item(merchant, mode=mode, key_type=req.type, name=req.name, scopes=req.scopes,
                                             ip_allowlist=req.ip_allowlist, require_signing=req.require_signing)
    _store(item)
    return {**view(item), "secret": raw, "signing_secret": signing_secret}


def _items(merchant_id: str) -> list[dict[str, Any]]:
    return list(dal.query_owner(dal.credentials_table(), f"MER#{merchant_id}", index="by_merchant",
                                sk_from="KEY#", sk_to="KEY#~", newest_first=True))


def list_keys(p: Principal, mode: str | None = None) -> dict[str, Any]:
    """The caller's mode's keys (``mode``, when given, must be the caller's)."""
    if mode is not None:
        _same_mode(p, mode)
    now = clock.now()
    keys = [view(i, now) for i in _items(p.merchant_id) if i["mode"] == p.mode]
    return {"object": "list", "api_keys": keys}


def find(p: Principal, key_id: str) -> dict[str, Any]:
    if not looks_like("key", key_id):
        raise InvalidRequest("id must be an API key id (key_...)", param="id")
    for item in _items(p.merchant_id):
        if item["key_id"] == key_id and item["mode"] == p.mode:  # the other mode's keys are not found
            # The index is eventually consistent: read the item itself before acting on it.
            fresh = dal.get(dal.credentials_table(), item["pk"], "KEY")
            if fresh is not None:
                return fresh
    raise NotFound("API key not found", param="id")


def roll(p: Principal, key_id: str, req: ApiKeyRoll) -> dict[str, Any]:
    """A new key with the same name, type, scopes, allowlist and signing; the old one stops now or after expires_in."""
    old = find(p, key_id)
    _check_grant(p, old["mode"], old.get("scopes") or [])
    if old["status"] != "active" or (old.get("expires_at") is not None and clock.now().timestamp() >= int(old["expires_at"])):
        raise Conflict(f"API key {key_id} is {view(old)['status']}; only an active key can be rolled", param="id")
    now = clock.now()
    merchant = account.merchant(p.merchant_id)
    raw, item, signing_secret = new_key_item(
        merchant, mode=old["mode"], key_type=old["type"], name=old.get("name", ""), scopes=old.get("scopes") or [],
        ip_allowlist=old.get("ip_allowlist") or [], require_signing=bool((old.get("signing") or {}).get("required")),
        now=now,
    )
    item["rolled_from"] = old["key_id"]
    # The new key first: if the old one's update then fails, both work, never neither.
    _store(item)
    common = dal.values(active="active", new=item["key_id"], at=clock.iso(now))
    if req.expires_in:
        until = int(now.timestamp()) + req.expires_in
        dal.update(dal.credentials_table(), old["pk"], "KEY", "SET expires_at = :until, rolled_to = :new, rolled_at = :at",
                   vals={**common, **dal.values(until=until)}, names={"#s": "status"}, condition="#s = :active")
    else:
        dal.update(dal.credentials_table(), old["pk"], "KEY", "SET #s = :rolled, rolled_to = :new, rolled_at = :at",
                   vals={**common, **dal.values(rolled="rolled")}, names={"#s": "status"}, condition="#s = :active")
    return {**view(item, now), "secret": raw, "signing_secret": signing_secret}


def revoke(p: Principal, key_id: str) -> dict[str, Any]:
    item = find(p, key_id)
    if item["status"] == "revoked":
        return view(item)
    now = clock.iso(clock.now())
    dal.update(dal.credentials_table(), item["pk"], "KEY", "SET #s = :revoked, revoked_at = :at",
               names={"#s": "status"}, vals=dal.values(revoked="revoked", at=now))
    return view({**item, "status": "revoked", "revoked_at": now})


def all_scopes() -> list[str]:
    return sorted(ALL_SCOPES)


# ---------------------------------------------------------------- authentication's side


def lookup(raw: str) -> dict[str, Any] | None:
    """The row of a presented key, whatever its status, or None when no key matches.

    One strongly consistent GetItem by the key's keyed hash, then a constant-time compare of the
    stored hash with the presented key's: a revoked or rolled key fails on the very next request."""
    if not KEY_PATTERN.match(raw):
        return None
    item = dal.get(dal.credentials_table(), f"KEY#{crypto.hash_secret(raw)}", "KEY", consistent=True)
    if item is None or not crypto.same_secret(item["key_hash"], raw):
        return None
    return item


def require_usable(item: dict[str, Any], now: float) -> None:
    """A 401 naming why, unless the key is active and (when rolled with a grace period) not yet expired."""
    if item.get("status") != "active":
        raise Unauthenticated("invalid API key: it has been revoked or rolled")
    if item.get("expires_at") is not None and now >= int(item["expires_at"]):
        raise Unauthenticated("invalid API key: it was rolled and its grace period has ended")
