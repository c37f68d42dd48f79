"""Events: the outbox rows written in the same transaction as the change they describe.

An event row holds ``payload``, the exact JSON bytes every delivery signs and sends, so a
retry a day later sends what the first attempt sent. ``sequence`` is the object's version
after the change: a receiver keeps the highest it has seen and drops stale updates.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.ids import new_id
from tahsil.kernel.principal import Principal


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    idempotency_key: str | None = None


def owner_keys(p: Principal, kind: str, now: dt.datetime, object_id: str) -> dict[str, str]:
    """The by_owner index keys: one partition per merchant, mode and kind, newest last."""
    return {"gsi1pk": f"{p.owner}#{kind}", "gsi1sk": f"{clock.sortable(now)}#{object_id}"}


def event_row(p: Principal, ctx: RequestContext | None, *, type_: str, obj: dict[str, Any], sequence: int,
              previous: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """An event about ``obj`` (as the API renders it) for the outbox."""
    event_id = new_id("evt")
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
        "pk": f"EVT#{event_id}", "sk": "EVT", **owner_keys(p, "EVT", now, event_id),
        "id": event_id, "type": type_, "merchant_id": p.merchant_id, "mode": p.mode,
        "object_id": obj["id"], "sequence": sequence, "created_at": clock.iso(now),
        "payload": json.dumps(payload, separators=(",", ":"), sort_keys=True),
        "delivery_status": "pending",
    }
