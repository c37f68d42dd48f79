"""Reading the webhook delivery log by endpoint (the console's Webhooks page, go-live, trace).

The rows are the ones ``tahsil.webhooks.delivery`` writes, in the PaymentsTable:
  EVT#<evt> / DLV#<endpoint>                    a delivery (status, attempts, round, last status code)
  EVT#<evt> / DLV#<endpoint>#<round>#<nnn>      an attempt that did not deliver (time, status code, latency,
                                                error class); the one that delivered is the delivery row's
                                                ``delivered_attempt``
Delivery rows are in no index (an index copy would cost a write unit per delivery, and one endpoint's
partition of it would be a hot partition): one endpoint's deliveries, newest first, are read by walking
the merchant's events (``outbox.owner_events``) and reading their rows for that endpoint by key
(BatchGetItem), at most ``MAX_EVENTS`` events per call. The overview's numbers come from counters
(``tahsil.store.counters``, scope ``DLV#<merchant>#<mode>``), not from these rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from tahsil.kernel.errors import InvalidRequest
from tahsil.kernel.events import delivery_partition
from tahsil.kernel.principal import Principal
from tahsil.store import dal
from tahsil.webhooks import delivery, outbox
from tahsil.webhooks.endpoints import load_endpoint, owner_endpoints

ATTEMPT_FIELDS = delivery.ATTEMPT_FIELDS


def endpoints(owner: str) -> list[dict[str, Any]]:
    """Every endpoint of a merchant and mode, deleted ones included (their deliveries still count)."""
    merchant_id, mode = owner.split("#", 1)
    return owner_endpoints(merchant_id, mode)


MAX_EVENTS = 2_000  # events walked per call looking for one endpoint's deliveries


def walk(owner: str, endpoint_id: str, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
         after: dict[str, Any] | None = None, newest_first: bool = True,
         max_events: int | None = None) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(event, its delivery row to this endpoint or None), newest event first, at most ``max_events`` events
    (default ``MAX_EVENTS``)."""
    max_events = max_events or MAX_EVENTS
    events = outbox.owner_events(owner, newest_first=newest_first, after=after, since=since,
                                   before=until + dt.timedelta(microseconds=1) if until else None, page_size=100)
    chunk: list[dict[str, Any]] = []

    def flush() -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
        wanted = [e for e in chunk if e.get("deliveries_total") != 0
                  and (not e.get("target_endpoint_id") or e["target_endpoint_id"] == endpoint_id)]
        keys = [(delivery_partition(e["id"]), f"DLV#{endpoint_id}") for e in wanted]
        found = dal.get_many(dal.payments_table(), keys) if keys else {}
        for event in chunk:
            yield event, found.get((delivery_partition(event["id"]), f"DLV#{endpoint_id}"))

    for walked, event in enumerate(events, start=1):
        chunk.append(event)
        if len(chunk) >= 50:
            yield from flush()
            chunk = []
        if walked >= max_events:
            break
    if chunk:
        yield from flush()


def delivery_rows(owner: str, endpoint_id: str, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                  limit: int | None = None, after: dict[str, Any] | None = None,
                  newest_first: bool = True, max_events: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for _, row in walk(owner, endpoint_id, since=since, until=until, after=after, newest_first=newest_first,
                       max_events=max_events):
        if row is None:
            continue
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def attempts(event_id: str, endpoint_id: str) -> list[dict[str, Any]]:
    """One delivery's attempts, oldest first."""
    rows = dal.query_partition(dal.payments_table(), delivery_partition(event_id), f"DLV#{endpoint_id}")
    summary = next((r for r in rows if r["sk"] == f"DLV#{endpoint_id}"), None)
    return [{"event_id": event_id, "endpoint_id": endpoint_id, **t} for t in delivery.attempt_history(summary, rows)]


def attempt_id(event_id: str, endpoint_id: str, round_: int, number: int) -> str:
    """How support names one attempt: the event (it is also the ``webhook-id`` header), endpoint, round, number."""
    return f"{event_id}/{endpoint_id}/{round_}/{number}"


def delivery_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": row["event_id"], "event_type": row.get("event_type", ""), "endpoint_id": row["endpoint_id"],
        "url": row.get("url", ""), "status": row["status"], "attempts": row.get("attempts", 0), "round": row.get("round", 0),
        "last_status_code": row.get("last_status_code"), "last_attempt_at": row.get("last_attempt_at"),
        "next_retry_at": row.get("next_retry_at"), "delivered_at": row.get("delivered_at"), "created_at": row["created_at"],
    }


def endpoint_deliveries(p: Principal, endpoint_id: str, *, limit: int, starting_after: str | None) -> dict[str, Any]:
    """``GET /v1/webhook-endpoints/{id}/deliveries``: one endpoint's delivery log, newest first.

    A page walks at most ``MAX_EVENTS`` events; when it stops there, ``has_more`` is true and the cursor is
    the last event walked (an endpoint subscribed to few event types can have short pages).
    """
    load_endpoint(p, endpoint_id)  # 404 unless it is this merchant's, in this mode
    anchor = None
    if starting_after:
        if starting_after.startswith("evt_"):
            anchor = outbox.find_event(p.merchant_id, p.mode, starting_after)
        if anchor is None:
            raise InvalidRequest("starting_after must be the event_id of a delivery in this list", param="starting_after")
    page: list[dict[str, Any]] = []
    has_more = False
    last_event: str | None = None
    walked = 0
    for event, row in walk(p.owner, endpoint_id, after=anchor):
        walked += 1
        if row is not None:
            if len(page) == limit:
                has_more = True
                break
            page.append(delivery_view(row))
        last_event = event["id"]
    else:
        if walked >= MAX_EVENTS:
            has_more = True
    cursor = page[-1]["event_id"] if page else None
    if has_more and walked >= MAX_EVENTS and len(page) < limit:
        cursor = last_event
    return {"object": "list", "endpoint_id": endpoint_id, "deliveries": page, "has_more": has_more,
            "next_starting_after": cursor if has_more else None}
