"""API versions: dated versions, a pin per merchant, and explicit version changes.

The code always builds the latest shape. A response or an event payload for an older
version is the latest shape passed back through every change made since that version,
newest first (Stripe's model): each change is one small, tested function that undoes
itself for older readers. Adding a version means adding its changes here, nothing else.

Callers:
- ``tahsil.api.http`` renders every API answer for the request's version (the ``Tahsil-Version``
  header, else the merchant's pin);
- webhook delivery renders each event for the endpoint's version:
  ``render(payload, endpoint_version, "event")``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

Kind = Literal["response", "event"]

LATEST = "2026-06-14.basra"
TIGRIS = "2025-12-01.tigris"


class Version(NamedTuple):
    name: str
    released: str
    summary: str


# Newest first.
VERSIONS: tuple[Version, ...] = (
    Version(LATEST, "2026-06-14", "Structured errors (code, message, param, request_id); events as "
                                  "{id, object, type, created, livemode, api_version, sequence, data.object}."),
    Version(TIGRIS, "2025-12-01", "Seed 002's shapes: `error` is a plain string; webhook events are "
                                  "{event, timestamp, id, data} with the object's fields in data."),
)
NAMES = tuple(v.name for v in VERSIONS)


class UnknownVersion(ValueError):
    pass


def check(version: str) -> str:
    if version not in NAMES:
        raise UnknownVersion(f"unknown API version {version!r}; known versions: {', '.join(NAMES)}")
    return version


def is_older(version: str, than: str) -> bool:
    return NAMES.index(check(version)) > NAMES.index(check(than))


# ---------------------------------------------------------------- the changes


def _plain_string_errors(body: dict[str, Any]) -> dict[str, Any]:
    """basra made ``error`` an object; tigris answers ``{"success": false, "error": "<message>"}``."""
    error = body.get("error")
    if body.get("success") is False and isinstance(error, dict):
        return {"success": False, "error": str(error.get("message", ""))}
    return body


# Seed 002's webhook payload for a payment: data = {payment_id, merchant_id, *these}.
SEED_PAYMENT_FIELDS = ("status", "amount", "currency", "card_brand", "card_last4", "created_at")


def _flat_event_envelope(payload: dict[str, Any]) -> dict[str, Any]:
    """basra events carry ``type``, ``created``, ``sequence`` and ``data.object``; tigris has seed 002's
    ``{"event", "timestamp", "id", "data"}``: a payment's ``data`` is exactly seed 002's
    ``{payment_id, merchant_id, status, amount, currency, card_brand, card_last4, created_at}``; other
    objects (payment intents) give all their fields, their id as ``<object>_id``."""
    if "type" not in payload or "event" in payload:
        return payload
    obj = dict(((payload.get("data") or {}).get("object")) or {})
    kind = obj.pop("object", None) or str(payload["type"]).split(".", 1)[0]
    data: dict[str, Any] = {}
    if "id" in obj:
        data[f"{kind}_id"] = obj.pop("id")
    merchant = payload.get("merchant_id") or obj.pop("merchant_id", None)
    if merchant:
        data["merchant_id"] = merchant
    if kind == "payment":  # exactly seed 002's fields
        data.update({name: obj.get(name) for name in SEED_PAYMENT_FIELDS})
    else:  # payment intents (and test events): the object's own fields
        data.update(obj)
    return {"event": payload["type"], "timestamp": payload.get("created"), "id": payload.get("id"), "data": data}


class Change(NamedTuple):
    name: str
    introduced_in: str  # readers pinned to an older version get ``downgrade`` applied
    kind: Kind
    description: str
    downgrade: Callable[[dict[str, Any]], dict[str, Any]]


# Newest first; applied in this order when rendering for an older version.
CHANGES: tuple[Change, ...] = (
    Change("structured_errors", LATEST, "response",
           "`error` is an object {code, message, param, request_id, ...} instead of a plain message string.",
           _plain_string_errors),
    Change("event_envelope", LATEST, "event",
           "Events are {id, object: event, type, created, livemode, api_version, sequence, data: {object, "
           "previous_attributes}, request} instead of {event, timestamp, id, data}.",
           _flat_event_envelope),
)


def render(payload: dict[str, Any], version: str, kind: Kind) -> dict[str, Any]:
    """``payload`` (latest shape) as a reader pinned to ``version`` expects it; the input is never modified."""
    check(version)
    if version == LATEST:
        return payload
    out = copy.deepcopy(payload)
    for change in CHANGES:
        if change.kind == kind and is_older(version, change.introduced_in):
            out = change.downgrade(out)
    return out


def catalog(pinned: str | None = None) -> dict[str, Any]:
    """What ``GET /v1/api-versions`` answers."""
    versions = []
    for v in VERSIONS:
        versions.append({
            "version": v.name,
            "released": v.released,
            "status": "latest" if v.name == LATEST else "supported",
            "summary": v.summary,
            "current": v.name == pinned,
            "changes": [{"name": c.name, "kind": c.kind, "description": c.description}
                        for c in CHANGES if c.introduced_in == v.name],
        })
    return {
        "object": "list",
        "latest": LATEST,
        "pinned": pinned,
        "upgrade_available": pinned is not None and pinned != LATEST,
        "versions": versions,
    }
