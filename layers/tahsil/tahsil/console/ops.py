"""Operator actions: create a merchant and its first keys (used by the ``tahsil`` command)."""

from __future__ import annotations

from typing import Any

from tahsil.identity import keys
from tahsil.kernel import clock, versions
from tahsil.kernel.errors import InvalidRequest
from tahsil.kernel.ids import new_id
from tahsil.kernel.principal import ALL_SCOPES, LATEST_API_VERSION
from tahsil.store import dal

MODES = ("test", "live")


def issue_key(merchant: dict[str, Any], mode: str, key_type: str, name: str) -> str:
    """Create a key with every scope and return it: the only time it exists in clear. The table keeps its keyed hash."""
    raw, item, _ = keys.new_key_item(merchant, mode=mode, key_type=key_type, name=name, scopes=ALL_SCOPES)
    dal.put(dal.credentials_table(), item, condition="attribute_not_exists(pk)")
    return raw


def create_merchant(name: str, *, live_approved: bool = False, api_version: str | None = None) -> dict[str, Any]:
    """A merchant and its first keys. A new merchant's live keys cannot create payments until a go-live review
    is approved (``tahsil.console.golive``); ``live_approved`` skips that, for tests only. ``api_version``
    pins the account (default the latest; e.g. 2025-12-01.tigris for seed 002's string errors)."""
    version = api_version or LATEST_API_VERSION
    if version not in versions.NAMES:
        raise InvalidRequest(f"unknown API version {version!r}; known versions: {', '.join(versions.NAMES)}",
                             param="api_version")
    now = clock.now()
    merchant: dict[str, Any] = {"merchant_id": new_id("mer"), "name": name, "api_version": version}
    if live_approved:
        merchant["live_enabled"] = True
    dal.put(dal.credentials_table(), {
        "pk": f"MER#{merchant['merchant_id']}", "sk": "MER", **merchant, "created_at": clock.iso(now),
    }, condition="attribute_not_exists(pk)")
    first = {
        mode: {
            "secret": issue_key(merchant, mode, "secret", f"first {mode} secret key"),
            "publishable": issue_key(merchant, mode, "publishable", f"first {mode} publishable key"),
        }
        for mode in MODES
    }
    return {"merchant_id": merchant["merchant_id"], "name": name, "api_version": version, "keys": first}
