"""Reading the webhook delivery log by endpoint (the console's Webhooks page, overview, go-live, trace).

The rows are the ones ``tahsil.webhooks`` writes, in the PaymentsTable:
  EVT#<evt> / DLV#<endpoint>                    a delivery (status, attempts, round, last status code)
  EVT#<evt> / DLV#<endpoint>#<round>#<nnn>      an attempt that did not deliver (time, status code, latency,
                                                error class); the one that delivered is the delivery row's
                                                ``delivered_attempt``
A delivery row also sits in the ``by_owner`` index under ``<merchant>#<mode>#DLV#<endpoint>``,
sorted by creation time: one endpoint's deliveries, newest first, without a scan.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.errors import InvalidRequest
from tahsil.kernel.principal import Principal
from tahsil.store import dal
from tahsil.webhooks import webhooks

ATTEMPT_FIELDS = webhooks.ATTEMPT_FIELDS


def endpoints(owner: str) -> list[dict[str, Any]]:
    """Every endpoint of a merchant and mode, deleted ones included (their deliveries still count)."""
    merchant_id, mode = owner.split("#", 1)
    return list(dal.query_owner(dal.credentials_table(), f"WHE#{merchant_id}#{mode}", index="by_merchant"))


def delivery_rows(owner: str, endpoint_id: str, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                  limit: int | None = None, start: dict[str, Any] | None = None,
                  newest_first: bool = True) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row in dal.query_owner(dal.payments_table(), f"{owner}#DLV#{endpoint_id}", newest_first=newest_first, start=start,
                               sk_from=clock.sortable(since) if since else None,
                               sk_to=clock.sortable(until) + "~" if until else None,
                               page_size=min(100, limit + 1) if limit else 100):
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def attempts(event_id: str, endpoint_id: str) -> list[dict[str, Any]]:
    """One delivery's attempts, oldest first."""
    rows = dal.query_partition(dal.payments_table(), f"EVT#{event_id}", f"DLV#{endpoint_id}")
    summary = next((r for r in rows if r["sk"] == f"DLV#{endpoint_id}"), None)
    return [{"event_id": event_id, "endpoint_id": endpoint_id, **t} for t in webhooks.attempt_history(summary, rows)]


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
    """``GET /v1/webhook-endpoints/{id}/deliveries``: one endpoint's delivery log, newest first."""
    webhooks.load_endpoint(p, endpoint_id)  # 404 unless it is this merchant's, in this mode
    start = None
    if starting_after:
        anchor = None
        if starting_after.startswith("evt_"):
            anchor = dal.get(dal.payments_table(), f"EVT#{starting_after}", f"DLV#{endpoint_id}")
        if anchor is None or anchor.get("merchant_id") != p.merchant_id or anchor.get("mode") != p.mode:
            raise InvalidRequest("starting_after must be the event_id of a delivery in this list", param="starting_after")
        start = dal.resume_after(anchor)
    rows = delivery_rows(p.owner, endpoint_id, limit=limit + 1, start=start)
    page = [delivery_view(r) for r in rows[:limit]]
    has_more = len(rows) > limit
    return {"object": "list", "endpoint_id": endpoint_id, "deliveries": page, "has_more": has_more,
            "next_starting_after": page[-1]["event_id"] if has_more else None}
