"""The events API: an event with its delivery state, the list of events, an event's deliveries, and sending
again (redeliver one event, recover an endpoint's failed deliveries, send a test event).

What an event's delivery state is comes from its delivery rows (``tahsil.webhooks.delivery``); its payload
from ``tahsil.webhooks.rendering``; the event rows from ``tahsil.webhooks.outbox``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.errors import InvalidRequest, NotFound
from tahsil.kernel.events import RequestContext, delivery_partition, event_row
from tahsil.kernel.ids import looks_like
from tahsil.kernel.principal import Principal
from tahsil.store import dal
from tahsil.webhooks import delivery, endpoints, outbox, rendering
from tahsil.webhooks.message import Message, enqueue


def delivery_summary(item: dict[str, Any], summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The events API's ``delivery``, from the event's delivery rows.

    An event with endpoints has nothing written about them until a first attempt creates a delivery
    row, which says how many endpoints the event went to (``of``). An event nobody subscribed to says
    ``deliveries_total = 0``. Rows written before this layout are read the same (their event row kept
    ``deliveries_total``).
    """
    legacy = item.get("deliveries_total")
    if summaries:
        total: int | None = max([len(summaries), int(legacy or 0)] + [int(r.get("of") or 0) for r in summaries])
    else:
        total = None if legacy is None else int(legacy)
    finished = sum(1 for r in summaries if r["status"] in delivery.FINAL)
    failed = sum(1 for r in summaries if r["status"] == "failed")
    if total is None:
        status = "pending"
    elif total == 0:
        status = "no_endpoints"
    elif failed:
        status = "failed"
    else:
        status = "delivered" if finished >= total else "pending"
    return {"status": status, "endpoints": total, "finished": finished, "failed": failed}


def event_view(item: dict[str, Any], summaries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The event as the API shows it; ``summaries``: its delivery rows (read here when not given)."""
    if summaries is None:
        summaries = [r for r in dal.query_partition(dal.payments_table(), delivery_partition(item["id"]), "DLV#")
                     if delivery.is_summary(r)]
    payload = rendering.payload(item)
    payload["delivery"] = delivery_summary(item, summaries)
    return payload


def load_event(p: Principal, event_id: str) -> dict[str, Any]:
    if not looks_like("evt", event_id):
        raise InvalidRequest("id must be an event id (evt_...)", param="id")
    item = outbox.find_event(p.merchant_id, p.mode, event_id)
    if item is None:
        raise NotFound("event not found", param="id")
    return item


def get_event(p: Principal, event_id: str) -> dict[str, Any]:
    """``GET /v1/events/{id}``: a GetItem for the event, a Query for its delivery rows."""
    item = load_event(p, event_id)
    return event_view(item)


def summaries_of(events: list[dict[str, Any]], endpoint_ids: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The delivery rows of several events: BatchGetItem over (event, endpoint) keys, the merchant's endpoints
    (deleted ones too) unless ``endpoint_ids`` says which; one Query per event when that takes fewer calls
    (a merchant with many endpoints)."""
    out: dict[str, list[dict[str, Any]]] = {e["id"]: [] for e in events}
    wanted = [e for e in events if e.get("deliveries_total") != 0]
    if not wanted:
        return out
    if endpoint_ids is None:
        endpoint_ids = [w["id"] for w in endpoints.owner_endpoints(wanted[0]["merchant_id"], wanted[0]["mode"])]
    table = dal.payments_table()
    if -(-len(wanted) * len(endpoint_ids) // 100) > len(wanted):  # BatchGetItem takes 100 keys a call
        for event in wanted:
            out[event["id"]] = [r for r in dal.query_partition(table, delivery_partition(event["id"]), "DLV#")
                                if delivery.is_summary(r)]
        return out
    found = dal.get_many(table, [(delivery_partition(e["id"]), f"DLV#{w}") for e in wanted for w in endpoint_ids])
    for row in found.values():
        out.setdefault(row["event_id"], []).append(row)
    return out


def _chunks(items: Any, size: int) -> Any:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# Server-side narrowing for the ``delivery_status`` filter; the status itself is decided from the delivery rows.
_DELIVERY_FILTERS = {
    "delivered": "attribute_not_exists(dlv_failed) AND (attribute_not_exists(deliveries_total) OR deliveries_total <> :zero)",
    "pending": "attribute_not_exists(dlv_failed) AND (attribute_not_exists(deliveries_total) OR deliveries_total <> :zero)",
    "failed": "attribute_exists(dlv_failed) OR deliveries_failed > :zero",
    "no_endpoints": "deliveries_total = :zero",
}


def list_events(p: Principal, *, limit: int, starting_after: str | None, type_: str | None, delivery_status: str | None,
                object_id: str | None, created_gte: dt.datetime | None, created_lte: dt.datetime | None) -> dict[str, Any]:
    anchor = None
    if starting_after:
        try:
            anchor = load_event(p, starting_after)
        except (InvalidRequest, NotFound):
            raise InvalidRequest("starting_after must be the id of one of your events", param="starting_after") from None
    clauses, names, vals = [], {}, {}
    if type_:
        clauses.append("#type = :type")
        names["#type"] = "type"
        vals |= dal.values(type=type_)
    if object_id:
        clauses.append("object_id = :object_id")
        vals |= dal.values(object_id=object_id)
    if delivery_status:
        clauses.append(f"({_DELIVERY_FILTERS[delivery_status]})")
        vals |= dal.values(zero=0)
    before = None
    if created_lte:
        try:
            before = created_lte + dt.timedelta(seconds=1)  # the whole second: ``created`` is shown in seconds
        except OverflowError:
            before = None  # the last second there is: no upper bound
    items = outbox.owner_events(
        p.owner, after=anchor, since=created_gte, before=before,
        filter_expression=" AND ".join(clauses) or None, names=names or None, vals=vals or None,
    )
    page: list[dict[str, Any]] = []
    has_more = False
    endpoint_ids = [w["id"] for w in endpoints.owner_endpoints(p.merchant_id, p.mode)]
    for chunk in _chunks(items, limit + 1):
        found = summaries_of(chunk, endpoint_ids)
        for item in chunk:
            view = event_view(item, found.get(item["id"], []))
            if delivery_status and view["delivery"]["status"] != delivery_status:
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append(view)
        if has_more:
            break
    return {"object": "list", "events": page, "has_more": has_more, "limit": limit,
            "next_starting_after": page[-1]["id"] if has_more else None}


def deliveries(p: Principal, event_id: str) -> dict[str, Any]:
    load_event(p, event_id)
    rows = dal.query_partition(dal.payments_table(), f"EVT#{event_id}", "DLV#")
    summaries = {r["endpoint_id"]: r for r in rows if delivery.is_summary(r)}
    out = []
    for endpoint_id, summary in summaries.items():
        tries = delivery.attempt_history(summary, rows)
        out.append({
            "endpoint_id": endpoint_id, "url": summary["url"], "status": summary["status"],
            "attempts": summary["attempts"], "round": summary["round"], "next_retry_at": summary.get("next_retry_at"),
            "delivered_at": summary.get("delivered_at"), "last_status_code": summary.get("last_status_code"),
            "history": tries,
        })
    return {"event_id": event_id, "deliveries": out}


def redeliver(p: Principal, event_id: str, endpoint_id: str | None) -> dict[str, Any]:
    """Start a delivery over (a new round, attempts from 1), for one endpoint or all."""
    item = load_event(p, event_id)
    table = dal.payments_table()
    rows = [r for r in dal.query_partition(table, delivery_partition(event_id), "DLV#") if delivery.is_summary(r)]
    queued = []
    if endpoint_id:
        rows = [r for r in rows if r["endpoint_id"] == endpoint_id]
        if not rows:
            endpoint = endpoints.load_endpoint(p, endpoint_id)  # a known endpoint that never got this event: add it
            now = clock.now()
            row = {"pk": delivery_partition(event_id), "sk": f"DLV#{endpoint_id}", "event_id": event_id, "event_type": item["type"],
                   "endpoint_id": endpoint_id, "merchant_id": p.merchant_id, "mode": p.mode, "url": endpoint["url"],
                   "status": "pending", "attempts": 0, "round": 0, "created_at": clock.iso(now)}
            actions = [dal.put_action(table, row, condition="attribute_not_exists(sk)")]
            if item.get("deliveries_total") == 0:  # no longer an event without endpoints
                actions.append(dal.update_action(table, item["pk"], item["sk"], "REMOVE deliveries_total", condition=None))
            try:
                dal.transact(actions)
                queued.append((event_id, endpoint_id, 0))
            except dal.ConditionFailed:
                pass  # someone added it at the same moment
    for row in rows:
        restart = f"SET #status = :pending, attempts = :zero, #round = :next REMOVE next_retry_at, {delivery.DELIVERED_ATTEMPT}"
        actions = [dal.update_action(table, row["pk"], row["sk"], restart,
                                     condition="#round = :round", names={"#status": "status", "#round": "round"},
                                     vals=dal.values(pending="pending", zero=0, next=row["round"] + 1, round=row["round"]))]
        kept = row.get(delivery.DELIVERED_ATTEMPT)
        if kept:  # the round's delivering attempt moves out of the row to an attempt row of its own
            actions.append(dal.put_action(table, {
                "pk": row["pk"], "sk": delivery.attempt_sk(row["endpoint_id"], int(kept["round"]), int(kept["number"])),
                "event_id": event_id, "endpoint_id": row["endpoint_id"], **kept}, condition="attribute_not_exists(sk)"))
        if row["status"] == "failed":
            expression = "DELETE dlv_failed :ep"
            if int(item.get("deliveries_failed") or 0) > 0:  # an event recorded before the failed set: its count
                expression += " ADD deliveries_failed :minus"
            actions.append(dal.update_action(table, item["pk"], item["sk"], expression, condition=None,
                                             vals=dal.values(ep={row["endpoint_id"]}, **(
                                                 {"minus": -1} if "ADD" in expression else {}))))
        try:
            dal.transact(actions)
        except dal.ConditionFailed:
            continue  # someone redelivered it at the same moment
        queued.append((event_id, row["endpoint_id"], row["round"] + 1))
    enqueue([Message(e, w, r, merchant_id=p.merchant_id, mode=p.mode) for e, w, r in queued])
    return {"event_id": event_id, "redelivering_to": [e for _, e, _ in queued]}


def recover(p: Principal, endpoint_id: str, since: dt.datetime) -> dict[str, Any]:
    """Send again every delivery to this endpoint that failed, of the events since ``since``.

    The events that had a delivery fail say so (``dlv_failed``, a set of endpoint ids), so one Query with a
    filter finds them; their delivery rows to this endpoint are read by key.
    """
    endpoints.load_endpoint(p, endpoint_id)
    candidates = list(outbox.owner_events(
        p.owner, since=since, newest_first=False,
        filter_expression="contains(dlv_failed, :ep) OR deliveries_failed > :zero", vals=dal.values(ep=endpoint_id, zero=0)))
    events: list[str] = []
    for chunk in _chunks(candidates, 100):
        keys = {e["id"]: (delivery_partition(e["id"]), f"DLV#{endpoint_id}") for e in chunk}
        found = dal.get_many(dal.payments_table(), list(keys.values()))
        events += [e["id"] for e in chunk if (found.get(keys[e["id"]]) or {}).get("status") == "failed"]
    for event_id in events:
        redeliver(p, event_id, endpoint_id)
    return {"endpoint_id": endpoint_id, "since": clock.iso(since), "redelivered_events": events}


def send_test(p: Principal, endpoint_id: str, ctx: RequestContext) -> dict[str, Any]:
    """Write a test event aimed at this endpoint only; it travels the real pipeline."""
    item = endpoints.load_endpoint(p, endpoint_id)
    now = clock.now()
    obj = {"id": endpoint_id, "object": "webhook_endpoint", "url": item["url"], "message": "This is a test event from Tahsil."}
    row = event_row(p, ctx, type_=rendering.TEST_EVENT, obj=obj, sequence=1, previous={}, now=now)
    row["target_endpoint_id"] = endpoint_id
    dal.put(dal.payments_table(), row, condition="attribute_not_exists(pk)")
    return event_view(row, [])
