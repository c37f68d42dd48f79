"""Webhook endpoints: create, read, list, change, delete, rotate the secret; which events each one wants.

Endpoints (CredentialsTable): WHE#<id> / WHE, indexed by merchant and mode (``by_merchant``:
WHE#<merchant>#<mode>); the signing secret sealed (``tahsil.webhooks.signing``). A URL passes the SSRF guard
(``tahsil.webhooks.guard``) when it is set, and again before every delivery.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from tahsil.kernel import clock, versions
from tahsil.kernel.errors import ConcurrentUpdate, InvalidRequest, NotFound
from tahsil.kernel.ids import looks_like, new_id
from tahsil.kernel.principal import Principal
from tahsil.store import dal
from tahsil.webhooks import guard, signing
from tahsil.webhooks.rendering import EVENT_TYPES

if TYPE_CHECKING:
    from tahsil.webhooks.models import EndpointCreate

ROTATION_OVERLAP = dt.timedelta(hours=24)


def _local_runtime() -> bool:
    return os.environ.get("TAHSIL_LOCAL_RUNTIME") == "true"


def check_url(url: str, mode: str) -> guard.Target:
    """Live: https to public addresses only. Test mode in the local runtime may also use http://localhost."""
    return guard.check_url(url, live=mode == "live", allow_loopback_http=mode == "test" and _local_runtime())


def subscribed(endpoint: dict[str, Any], event_type: str) -> bool:
    """Whether an enabled endpoint wants this type of event."""
    return endpoint["status"] == "enabled" and (endpoint["enabled_events"] == ["*"] or event_type in endpoint["enabled_events"])


def endpoint_view(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"], "object": "webhook_endpoint", "name": item.get("name"), "url": item["url"],
        "description": item.get("description"), "enabled_events": item["enabled_events"],
        "status": item["status"], "disabled_reason": item.get("disabled_reason"),
        "livemode": item["mode"] == "live", "api_version": item.get("api_version"),
        "secret_rotated_at": item.get("secret_rotated_at"),
        "previous_secret_expires_at": item.get("previous_secret_expires_at") if signing.overlap_active(item, clock.now()) else None,
        "created_at": item["created_at"], "updated_at": item.get("updated_at"),
    }


def _check_version(version: str) -> str:
    if version not in versions.NAMES:
        raise InvalidRequest(f"api_version: unknown API version {version!r}; known versions: {', '.join(versions.NAMES)}",
                             param="api_version")
    return version


def _check_events(events: list[str]) -> list[str]:
    if events == ["*"]:
        return events
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        raise InvalidRequest(f"unknown event types {unknown}; use ['*'] or some of {list(EVENT_TYPES)}",
                             param="enabled_events")
    return sorted(set(events))


def create_from(p: Principal, req: EndpointCreate, *, requested_version: str | None) -> dict[str, Any]:
    """POST /v1/webhook-endpoints: the body's ``api_version``, else the request's ``Tahsil-Version``, else the
    account's; the name defaults to the URL."""
    return create_endpoint(p, name=req.name or req.url, url=req.url, enabled_events=req.enabled_events,
                           description=req.description, api_version=req.api_version or requested_version)


def create_endpoint(p: Principal, *, name: str, url: str, enabled_events: list[str], description: str | None,
                    api_version: str | None = None) -> dict[str, Any]:
    """``api_version``: what the endpoint's events are rendered for; default the account's version."""
    version = _check_version(api_version) if api_version else p.api_version
    check_url(url, p.mode)
    now = clock.now()
    endpoint_id = new_id("we")
    secret = signing.new_secret()
    item = {
        "pk": f"WHE#{endpoint_id}", "sk": "WHE",
        "gsi1pk": f"WHE#{p.merchant_id}#{p.mode}", "gsi1sk": f"{clock.sortable(now)}#{endpoint_id}",
        "id": endpoint_id, "merchant_id": p.merchant_id, "mode": p.mode, "name": name, "url": url,
        "description": description, "enabled_events": _check_events(enabled_events), "status": "enabled",
        "api_version": version, "secret_sealed": signing.seal(secret, endpoint_id), "created_at": clock.iso(now),
    }
    dal.put(dal.credentials_table(), item, condition="attribute_not_exists(pk)")
    return {**endpoint_view(item), "secret": secret}


def load_endpoint(p: Principal, endpoint_id: str) -> dict[str, Any]:
    if not looks_like("we", endpoint_id):
        raise InvalidRequest("id must be a webhook endpoint id (we_...)", param="id")
    item = dal.get(dal.credentials_table(), f"WHE#{endpoint_id}", "WHE")
    if item is None or item["merchant_id"] != p.merchant_id or item["mode"] != p.mode or item["status"] == "deleted":
        raise NotFound("webhook endpoint not found", param="id")
    return item


def list_endpoints(p: Principal) -> dict[str, Any]:
    items = dal.query_owner(dal.credentials_table(), f"WHE#{p.merchant_id}#{p.mode}", index="by_merchant",
                            newest_first=True)
    return {"webhook_endpoints": [endpoint_view(i) for i in items if i["status"] != "deleted"]}


def owner_endpoints(merchant_id: str, mode: str) -> list[dict[str, Any]]:
    """Every endpoint of a merchant and mode, deleted ones included (their deliveries still count)."""
    return list(dal.query_owner(dal.credentials_table(), f"WHE#{merchant_id}#{mode}", index="by_merchant"))


def update_endpoint(p: Principal, endpoint_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    item = load_endpoint(p, endpoint_id)
    fields: dict[str, Any] = {"updated_at": clock.iso(clock.now())}
    if "url" in changes:
        check_url(changes["url"], p.mode)
        fields["url"] = changes["url"]
    if "enabled_events" in changes:
        fields["enabled_events"] = _check_events(changes["enabled_events"])
    for name in ("name", "description"):
        if name in changes:
            fields[name] = changes[name]
    if "enabled" in changes:
        fields["status"] = "enabled" if changes["enabled"] else "disabled"
        fields["disabled_reason"] = None if changes["enabled"] else "disabled by the merchant"
    if changes.get("api_version") is not None:
        fields["api_version"] = _check_version(changes["api_version"])
    if changes.get("end_secret_overlap"):
        # From now on both header styles are signed with the current secret only.
        fields["previous_secret_sealed"] = None
        fields["previous_secret_expires_at"] = None
    _update_endpoint_fields(item, fields)
    return endpoint_view({**item, **fields})


def _update_endpoint_fields(item: dict[str, Any], fields: dict[str, Any], *, sealed_as_read: bool = False) -> None:
    """Write ``fields`` on the endpoint. With ``sealed_as_read``, only if its secret is still the one ``item``
    holds (its ciphertext, unique per seal): a concurrent rotation makes this one a 409, never a lost secret."""
    present = {k: v for k, v in fields.items() if v is not None}
    absent = [k for k, v in fields.items() if v is None]
    names = {f"#{k}": k for k in fields} | {"#st": "status"}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in present)
    if absent:
        expression += " REMOVE " + ", ".join(f"#{k}" for k in absent)
    condition = "attribute_exists(pk) AND #st <> :deleted"
    extra: dict[str, Any] = {}
    if sealed_as_read:
        names |= {"#sealed": "secret_sealed", "#ct": "ciphertext"}
        condition += " AND #sealed.#ct = :read_ct"
        extra["read_ct"] = item["secret_sealed"]["ciphertext"]
    try:
        dal.update(dal.credentials_table(), item["pk"], "WHE", expression, names=names,
                   vals=dal.values(**present, **extra, deleted="deleted"), condition=condition)
    except dal.ConditionFailed:
        if sealed_as_read:
            current = dal.get(dal.credentials_table(), item["pk"], "WHE")
            if current is not None and current["status"] != "deleted":
                raise ConcurrentUpdate("the secret was rotated by another request at the same moment: its secret is "
                                       "the one in force; rotate again for a new one") from None
        raise NotFound("webhook endpoint not found", param="id") from None


def delete_endpoint(p: Principal, endpoint_id: str) -> dict[str, Any]:
    item = load_endpoint(p, endpoint_id)
    _update_endpoint_fields(item, {"status": "deleted", "updated_at": clock.iso(clock.now())})
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def rotate_secret(p: Principal, endpoint_id: str) -> dict[str, Any]:
    """A new secret, shown once; the old one keeps signing beside it for 24 hours."""
    item = load_endpoint(p, endpoint_id)
    now = clock.now()
    secret = signing.new_secret()
    _update_endpoint_fields(item, {
        "secret_sealed": signing.seal(secret, endpoint_id),
        "previous_secret_sealed": item["secret_sealed"],
        "previous_secret_expires_at": clock.iso(now + ROTATION_OVERLAP),
        "secret_rotated_at": clock.iso(now),
        "updated_at": clock.iso(now),
    }, sealed_as_read=True)  # two rotations at once: one wins, the other is a 409 (its secret was never in force)
    return {**endpoint_view({**item, "secret_rotated_at": clock.iso(now)}), "secret": secret,
            "previous_secret_expires_at": clock.iso(now + ROTATION_OVERLAP)}
