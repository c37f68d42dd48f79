"""Account settings that ride on every key: the API version pin and rate-limit overrides.

Both live on the merchant item (``MER#<id>``) and are copied onto each of the merchant's key
items, so authentication (one GetItem of the key) knows them without a second read. Changing
one updates the merchant item first, then every key (few per merchant). A key created in
between reads the merchant item after its update, so it gets the new value too.
"""

from __future__ import annotations

from typing import Any

from tahsil.kernel import versions
from tahsil.kernel.errors import InvalidRequest, NotFound
from tahsil.kernel.principal import Principal
from tahsil.store import dal


def merchant(merchant_id: str) -> dict[str, Any]:
    item = dal.get(dal.credentials_table(), f"MER#{merchant_id}", "MER")
    if item is None:
        raise NotFound("merchant not found")
    return item


def _key_items(merchant_id: str) -> list[dict[str, Any]]:
    return list(dal.query_owner(dal.credentials_table(), f"MER#{merchant_id}", index="by_merchant",
                                sk_from="KEY#", sk_to="KEY#~"))


def copy_to_keys(merchant_id: str, attribute: str, value: Any) -> int:
    keys = _key_items(merchant_id)
    for key in keys:
        dal.update(dal.credentials_table(), key["pk"], "KEY", "SET #a = :v", names={"#a": attribute},
                   vals=dal.values(v=value))
    return len(keys)


def api_versions(p: Principal) -> dict[str, Any]:
    return versions.catalog(pinned=p.api_version)


def upgrade_api_version(p: Principal, target: str) -> dict[str, Any]:
    """Move the pin forward (a downgrade is refused: old shapes are for integrations not yet upgraded)."""
    item = merchant(p.merchant_id)
    current = item.get("api_version") or versions.LATEST
    if versions.is_older(target, current):
        raise InvalidRequest(f"the account is pinned to {current}; it can only move to a newer version", param="api_version")
    dal.update(dal.credentials_table(), f"MER#{p.merchant_id}", "MER", "SET api_version = :v",
               vals=dal.values(v=target))
    updated = copy_to_keys(p.merchant_id, "api_version", target)
    return {"object": "account", "api_version": target, "previous_version": current, "keys_updated": updated}
