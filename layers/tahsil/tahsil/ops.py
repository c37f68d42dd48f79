"""Operator actions: create a merchant and its first keys (used by the ``tahsil`` command)."""

from __future__ import annotations

from typing import Any

from tahsil import clock, crypto, dal
from tahsil.auth import LATEST_API_VERSION
from tahsil.ids import new_id, random_token

MODES = ("test", "live")


def issue_key(merchant: dict[str, Any], mode: str, key_type: str, name: str) -> str:
    """Create a key and return it: the only time it exists in clear. The table keeps its keyed hash."""
    prefix = "sk" if key_type == "secret" else "pk"
    raw = f"{prefix}_{mode}_{random_token(32)}"  # 32 base62 characters: ~190 bits
    key_hash = crypto.hash_secret(raw)
    now = clock.now()
    key_id = new_id("key")
    dal.put(dal.credentials_table(), {
        "pk": f"KEY#{key_hash}", "sk": "KEY",
        "gsi1pk": f"MER#{merchant['merchant_id']}", "gsi1sk": f"KEY#{clock.sortable(now)}#{key_id}",
        "key_id": key_id, "key_hash": key_hash, "name": name, "merchant_id": merchant["merchant_id"],
        "merchant_name": merchant["name"], "api_version": merchant["api_version"],
        "mode": mode, "type": key_type, "status": "active",
        "prefix": raw[: len(prefix) + len(mode) + 2], "last4": raw[-4:], "created_at": clock.iso(now),
    }, condition="attribute_not_exists(pk)")
    return raw


def create_merchant(name: str) -> dict[str, Any]:
    now = clock.now()
    merchant = {"merchant_id": new_id("mer"), "name": name, "api_version": LATEST_API_VERSION}
    dal.put(dal.credentials_table(), {
        "pk": f"MER#{merchant['merchant_id']}", "sk": "MER", **merchant, "created_at": clock.iso(now),
    }, condition="attribute_not_exists(pk)")
    keys = {
        mode: {
            "secret": issue_key(merchant, mode, "secret", f"first {mode} secret key"),
            "publishable": issue_key(merchant, mode, "publishable", f"first {mode} publishable key"),
        }
        for mode in MODES
    }
    return {"merchant_id": merchant["merchant_id"], "name": name, "keys": keys}
