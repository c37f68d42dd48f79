"""API versions: dated versions, a pin per merchant, and explicit version changes.

The code always builds the latest shape. A response or an event payload for an older
version is the latest shape passed back through every change made since that version,
newest first (Stripe's model): each change is one small, tested function that undoes
itself for older readers. Adding a version means adding its changes here, nothing else.

Callers:
- ``tahsil.api.http`` renders every API answer for the request's version (the ``Tahsil-Version``
  header, else the merchant's pin);
- webhook delivery renders each event for the endpoint's version:
  ``render(payload, endpoint_version, "event")``;
- the public endpoints' handlers are wrapped in ``public_handler``: their answers render as seed 002's public
  ones (error objects), and a change may also give older readers another HTTP status (``render_status``).
"""

from __future__ import annotations

import contextvars
import copy
import functools
import json
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

Kind = Literal["response", "event"]
# Which API an answer comes from: the merchant's (/v1) or the checkout page's public one (/public), whose
# errors seed 002 already gave as objects. Set around a public endpoint's handler by ``public_handler``.
Surface = Literal["merchant", "public"]
_SURFACE: contextvars.ContextVar[Surface] = contextvars.ContextVar("tahsil_answer_surface", default="merchant")

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


# Seed 002's public errors (the checkout page's calls) are objects with these fields only.
SEED_PUBLIC_ERROR_FIELDS = ("code", "message", "remaining_attempts")


def _plain_string_errors(body: dict[str, Any]) -> dict[str, Any]:
    """basra made ``error`` an object; tigris answers ``{"success": false, "error": "<message>"}`` on the
    merchant API, and seed 002's ``{"code", "message"}`` object (plus ``remaining_attempts`` on a decline)
    on the public endpoints."""
    error = body.get("error")
    if body.get("success") is False and isinstance(error, dict):
        if _SURFACE.get() == "public":
            return {"success": False, "error": {k: error[k] for k in SEED_PUBLIC_ERROR_FIELDS if k in error}}
        return {"success": False, "error": str(error.get("message", ""))}
    return body


# A payment intent's statuses as seed 002 names them: a paid intent reads like the authorization it made
# (the confirm answers "authorized"; ``payment_status`` keeps the payment's own status), and an intent
# locked by five declines has failed (create a new one to try again).
SEED_INTENT_STATUSES = {"succeeded": "authorized", "locked": "failed"}


def _seed_intent(obj: Any) -> Any:
    if isinstance(obj, dict) and obj.get("object") == "payment_intent" and obj.get("status") in SEED_INTENT_STATUSES:
        return {**obj, "status": SEED_INTENT_STATUSES[obj["status"]]}
    return obj


def _seed_intent_statuses(body: dict[str, Any]) -> dict[str, Any]:
    """basra names a paid intent ``succeeded`` and a locked one ``locked``; tigris says ``authorized`` and
    ``failed``, in every answer that holds an intent (one, or a list of them)."""
    data = body.get("data")
    if body.get("success") is not True or not isinstance(data, dict):
        return body
    if isinstance(data.get("payment_intents"), list):
        return {**body, "data": {**data, "payment_intents": [_seed_intent(i) for i in data["payment_intents"]]}}
    return {**body, "data": _seed_intent(data)}


def _seed_intent_event_statuses(payload: dict[str, Any]) -> dict[str, Any]:
    """The same names in ``payment_intent.*`` events (their object and its previous status)."""
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return payload
    obj = data["object"]
    if obj.get("object") != "payment_intent":
        return payload
    previous = data.get("previous_attributes")
    if isinstance(previous, dict) and previous.get("status") in SEED_INTENT_STATUSES:
        previous = {**previous, "status": SEED_INTENT_STATUSES[previous["status"]]}
    return {**payload, "data": {**data, "object": _seed_intent(obj), "previous_attributes": previous}}


def _paid_intent_is_completed(body: dict[str, Any]) -> dict[str, Any]:
    """basra answers a confirm of a paid intent 409 ``INVALID_STATE`` (``status: succeeded``); tigris gives
    seed 002's 400 ``INTENT_COMPLETED``, the answer to cancelling a paid intent (the status: ``render_status``)."""
    error = body.get("error")
    if body.get("success") is False and isinstance(error, dict) and error.get("code") == "INVALID_STATE" \
            and error.get("status") == "succeeded":
        return {**body, "error": {**error, "code": "INTENT_COMPLETED", "message": "payment intent already completed"}}
    return body


def _intent_completed_status(status: int, body: dict[str, Any]) -> int:
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return 400 if status == 409 and code == "INTENT_COMPLETED" else status


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
    # The answer's HTTP status for older readers, from the status and the body already downgraded.
    status: Callable[[int, dict[str, Any]], int] | None = None


# Newest first; applied in this order when rendering for an older version.
CHANGES: tuple[Change, ...] = (
    Change("intent_statuses", LATEST, "response",
           "A paid payment intent reads `succeeded` (was `authorized`, also in the confirm answer) and one locked by "
           "five declines `locked` (was `failed`).",
           _seed_intent_statuses),
    Change("intent_statuses_in_events", LATEST, "event",
           "payment_intent events name the statuses `succeeded` and `locked` (were `authorized` and `failed`).",
           _seed_intent_event_statuses),
    Change("confirm_paid_intent_conflict", LATEST, "response",
           "Confirming a paid payment intent is 409 `INVALID_STATE` (was 400 `INTENT_COMPLETED`).",
           _paid_intent_is_completed, _intent_completed_status),
    Change("structured_errors", LATEST, "response",
           "`error` is an object {code, message, param, request_id, ...} instead of a plain message string (and, "
           "on the public checkout endpoints, instead of {code, message, remaining_attempts}).",
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


def render_status(status: int, body: dict[str, Any], version: str) -> int:
    """The HTTP status a reader pinned to ``version`` gets, given the latest one and the body as ``render`` gave it."""
    check(version)
    for change in CHANGES:
        if change.kind == "response" and change.status is not None and is_older(version, change.introduced_in):
            status = change.status(status, body)
    return status


def public_handler(handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A public endpoint's Lambda handler (the checkout page's calls): its answers are rendered as public ones
    for older versions (seed 002's error objects), with the status codes those versions answered."""

    @functools.wraps(handler)
    def wrapped(event: dict[str, Any], context: Any) -> dict[str, Any]:
        token = _SURFACE.set("public")
        try:
            response = handler(event, context)
        finally:
            _SURFACE.reset(token)
        version = _header(response, "Tahsil-Version")
        if version in NAMES and version != LATEST and isinstance(response.get("body"), str):
            try:
                body = json.loads(response["body"])
            except ValueError:
                return response
            if isinstance(body, dict):
                response["statusCode"] = render_status(int(response.get("statusCode", 200)), body, version)
        return response

    return wrapped


def _header(response: dict[str, Any], name: str) -> str | None:
    for k, v in (response.get("headers") or {}).items():
        if k.lower() == name.lower():
            return str(v)
    for k, vs in (response.get("multiValueHeaders") or {}).items():
        if k.lower() == name.lower() and vs:
            return str(vs[-1])
    return None


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
