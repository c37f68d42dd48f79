"""Events: the outbox rows written in the same transaction as the change they describe.

An event row holds ``payload``, the exact JSON bytes every delivery signs and sends (for the
latest API version; older versions are rendered from them at delivery, deterministically), so
a retry a day later sends what the first attempt sent. The bytes are stored zlib-compressed
(a binary attribute): a payment's event is ~1.2 KB of JSON and ~0.6 KB compressed, which
keeps the row and every update on it inside one write unit.
Read it with ``payload_text``/``payload_of``, never the attribute. ``sequence`` is the
object's version after the change: a receiver keeps the highest it has seen and drops
stale updates.

Where the rows are (PaymentsTable): ``EVTS#<merchant>#<mode>`` / ``<event id>``, one partition per merchant
and mode, in no index. Event ids sort by time (``new_event_id``), so that partition read backwards is the
merchant's events, newest first, and an event is a GetItem whose key comes from the caller's principal and
the id. Rows written before this layout are ``EVT#<event id>`` / ``EVT`` with a ``by_owner`` copy
(gsi1pk ``<merchant>#<mode>#EVT``); readers still find and list them (``tahsil.webhooks.outbox``).
An event's deliveries stay in their own partition, ``EVT#<event id>`` (``delivery_partition``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from typing import Any, NamedTuple

from tahsil.kernel import clock
from tahsil.kernel.ids import new_sortable_id
from tahsil.kernel.principal import Principal


class Answer:
    """The HTTP layer's hold on a request's Idempotency-Key, handed to the domain in ``RequestContext.answer``.

    A domain call whose effect is one DynamoDB transaction asks it for the actions that store its final
    answer (``ok(data)``, ``refusal(error)``) and puts them in that same transaction, then reports
    ``committed``: the effect and the answer a same-key retry replays land together or not at all, so a
    crash between them cannot make a retry run the request twice (docs/decisions/idempotency.md).
    The HTTP layer (``tahsil.api.idempotency``) implements it; the domain only sees this interface.
    """

    def ok(self, data: Any) -> list[dict[str, Any]]:  # pragma: no cover - interface
        raise NotImplementedError

    def refusal(self, error: Any) -> list[dict[str, Any]]:  # pragma: no cover - interface
        raise NotImplementedError

    def committed(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class RequestContext(NamedTuple):
    request_id: str
    idempotency_key: str | None = None
    answer: Answer | None = None  # set for an idempotent request: see ``Answer``

    def binding(self, data: Any = None, *, error: Any = None) -> list[dict[str, Any]]:
        """The actions that store this request's final answer with its effect (none without an Idempotency-Key)."""
        if self.answer is None:
            return []
        return self.answer.refusal(error) if error is not None else self.answer.ok(data)

    def bound(self) -> None:
        """The transaction holding ``binding``'s actions committed."""
        if self.answer is not None:
            self.answer.committed()


def owner_keys(p: Principal, kind: str, now: dt.datetime, object_id: str) -> dict[str, str]:
    """The by_owner index keys: one partition per merchant, mode and kind, newest last."""
    return {"gsi1pk": f"{p.owner}#{kind}", "gsi1sk": f"{clock.sortable(now)}#{object_id}"}


EVENT_PARTITION = "EVTS#"  # the prefix of the event partitions (the stream filters in template.yaml match it)


def event_partition(owner: str) -> str:
    """The partition of one merchant's events in one mode (``owner`` is ``<merchant>#<mode>``)."""
    return f"{EVENT_PARTITION}{owner}"


def delivery_partition(event_id: str) -> str:
    """The partition of an event's delivery and attempt rows (the old event rows' partition too)."""
    return f"EVT#{event_id}"


def new_event_id(now: dt.datetime) -> str:
    """``evt_`` and 20 characters, the first 9 of them the time: event ids sort by creation."""
    return new_sortable_id("evt", now)


_ID_TIMES = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=62 ** 9))


def event_id_bound(moment: dt.datetime) -> str:
    """A sort key below every event id created at or after ``moment`` and above every one created before it
    (a moment outside the ids' time span, 1970 to 2398, is below or above them all)."""
    if moment < _ID_TIMES[0]:
        return "evt_"
    if moment >= _ID_TIMES[1]:
        return "evt_~"
    return new_sortable_id("evt", moment)[:13]


def is_event_image(image: dict[str, Any] | None) -> bool:
    """Whether a stream image (or item) is an event row, of either layout."""
    if not image:
        return False
    return image.get("sk") == "EVT" or str(image.get("pk", "")).startswith(EVENT_PARTITION)


def event_row(p: Principal, ctx: RequestContext | None, *, type_: str, obj: dict[str, Any], sequence: int,
              previous: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """An event about ``obj`` (as the API renders it) for the outbox."""
    event_id = new_event_id(now)
    payload = {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": clock.iso(now),
        "livemode": p.livemode,
        "api_version": p.api_version,
        "sequence": sequence,
        "data": {"object": obj, "previous_attributes": previous},
        "request": {"id": ctx.request_id if ctx else None, "idempotency_key": ctx.idempotency_key if ctx else None},
    }
    return {
        "pk": event_partition(p.owner), "sk": event_id,
        "id": event_id, "type": type_, "merchant_id": p.merchant_id, "mode": p.mode,
        "object_id": obj["id"], "sequence": sequence, "created_at": clock.iso(now),
        "payload": pack(json.dumps(payload, separators=(",", ":"), sort_keys=True)),
    }


def pack(text: str) -> bytes:
    """The stored form of an event's JSON: zlib at its best level (decompression restores every byte)."""
    return zlib.compress(text.encode(), 9)


def payload_text(row: dict[str, Any]) -> str:
    """The exact JSON text of an event row's payload, whatever form it arrives in: bytes (or boto3's
    ``Binary``) from the table, a base64 string from a stream image, or the plain JSON text that rows
    written before compression hold."""
    raw = row["payload"]
    if isinstance(raw, str):
        if raw.startswith("{"):
            return raw
        raw = base64.b64decode(raw)
    return zlib.decompress(bytes(getattr(raw, "value", raw))).decode()


def payload_of(row: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(payload_text(row))
    return parsed
