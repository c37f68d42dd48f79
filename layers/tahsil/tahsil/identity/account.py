"""Account settings that ride on every key: the API version pin and the rate-limit overrides.

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


# Rate-limit classes a merchant's overrides may name (``tahsil.api.ratelimit`` counts them; "notifications"
# is per source IP, never per merchant, so it has no override).
RATE_LIMIT_CLASSES = ("payments", "queries", "public", "other")


def set_rate_limits(merchant_id: str, overrides: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Operator action (``tahsil merchants limits``): per-merchant overrides of the configured limits.

    Stored on the merchant item and copied onto its keys, so the key lookup that authenticates a
    request brings them (``tahsil.api.ratelimit`` applies them).
    """
    clean: dict[str, dict[str, int]] = {}
    for rate_class, limits in overrides.items():
        if rate_class not in RATE_LIMIT_CLASSES:
            raise InvalidRequest(f"unknown rate-limit class {rate_class!r}; classes: {', '.join(RATE_LIMIT_CLASSES)}",
                                 param="rate_limits")
        for name, value in limits.items():
            if name not in ("per_second", "per_hour") or not isinstance(value, int) or value < 1:
                raise InvalidRequest(f"{rate_class}.{name} must be per_second or per_hour, a positive integer",
                                     param="rate_limits")
        clean[rate_class] = dict(limits)
    merchant(merchant_id)
    dal.update(dal.credentials_table(), f"MER#{merchant_id}", "MER", "SET rate_limits = :r", vals=dal.values(r=clean))
    updated = copy_to_keys(merchant_id, "rate_limits", clean)
    return {"merchant_id": merchant_id, "rate_limits": clean, "keys_updated": updated}
