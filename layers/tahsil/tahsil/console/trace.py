"""The integration trace (seed 000's hand-off): one payment, from the checkout request to fulfillment.

``GET /v1/payments/{id}/trace`` joins what Tahsil already recorded, so support can answer "what
happened after the customer paid?" with ids:
- the payment and, when it came from the hosted checkout page, its payment intent
  (``metadata.payment_intent``);
- their events (the outbox rows; each names the request that caused it);
- each event's webhook deliveries and attempts (status code, latency, the merchant's answer);
- the request logs: the requests that caused the events, and every request whose path names the
  payment or the intent (reads, captures, the customer's confirm, the fulfillment);
- the fulfillment the merchant recorded (``POST /v1/payments/{id}/fulfillment``).

It answers a ``timeline`` (every record, oldest first, each with its ids) and a ``handoff``: the
five business steps of seed 000 (checkout, capture, signed webhook, fulfillment, support trace),
each with a status and the ids that prove it.

Request logs arrive through a queue (a few seconds behind), so a trace taken right after a
request may not show it yet; the events and deliveries are read strongly consistent.

Bounded work: at most ``MAX_EVENT_ROWS`` event rows and ``MAX_LOG_PAGES`` pages of 1,000
request-log rows are read, from five minutes before the payment (or its intent) was created;
reading stops early once the objects' every event (their ``version``) has been found.
"""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import Any

from tahsil.console.models import FulfillmentCreate
from tahsil.kernel import clock
from tahsil.kernel.errors import Conflict, NotFound
from tahsil.kernel.events import RequestContext, delivery_partition, payload_of
from tahsil.kernel.ids import looks_like, new_id
from tahsil.kernel.principal import Principal
from tahsil.payments import checkout, intents, payments
from tahsil.payments.models import PaymentStatus
from tahsil.store import dal
from tahsil.webhooks import deliveries, outbox

MAX_EVENT_ROWS = 2_000
MAX_LOG_PAGES = 5
LOG_PAGE = 1_000
LEAD = dt.timedelta(minutes=5)
FULFILLABLE = (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED)
_ORDER = {"request": 0, "event": 1, "webhook_attempt": 2, "fulfillment": 3}


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def status_text(code: int | None, error: str | None = None) -> str:
    if code is None:
        return error or "no answer"
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


# ---------------------------------------------------------------- fulfillment


def fulfillment_view(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "object": "fulfillment", "payment_id": item["payment_id"], "reference": item["reference"],
            "note": item.get("note"), "created_at": item["created_at"], "request_id": item.get("request_id"),
            "recorded_by": item.get("recorded_by")}


def fulfill(p: Principal, payment_id: str, req: FulfillmentCreate, ctx: RequestContext) -> dict[str, Any]:
    """Record that the merchant fulfilled the order: once per payment; the same reference again is a no-op."""
    item = payments.load_payment(p, payment_id)
    table = dal.payments_table()
    existing = dal.get(table, item["pk"], "FUL")
    if existing is None:
        status = payments.effective_status(item, clock.now())
        if status not in FULFILLABLE:
            raise Conflict(f"only a captured payment can be fulfilled; this one is {status}", status=status)
        row = {"pk": item["pk"], "sk": "FUL", "id": new_id("ful"), "payment_id": payment_id,
               "merchant_id": p.merchant_id, "mode": p.mode, "reference": req.reference, "note": req.note,
               "created_at": clock.iso(clock.now()), "request_id": ctx.request_id, "recorded_by": p.key_id}
        try:
            dal.put(table, row, condition="attribute_not_exists(sk)")
            return fulfillment_view(row)
        except dal.ConditionFailed:
            existing = dal.get(table, item["pk"], "FUL")  # a concurrent request recorded one first
    assert existing is not None
    if existing["reference"] != req.reference:
        raise Conflict(f"payment already fulfilled with reference {existing['reference']!r}", param="reference",
                       fulfillment_id=existing["id"])
    return fulfillment_view(existing)


# ---------------------------------------------------------------- reading


def _events(p: Principal, since: dt.datetime, wanted: dict[str, int]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    counts = dict.fromkeys(wanted, 0)
    for read, event in enumerate(outbox.owner_events(p.owner, newest_first=False, since=since, page_size=200),
                                 start=1):
        if event["object_id"] in counts:
            found.append(event)
            counts[event["object_id"]] += 1
            if all(counts[k] >= wanted[k] for k in wanted):
                break
        if read >= MAX_EVENT_ROWS:
            break
    return found


def _logs(p: Principal, since: dt.datetime, request_ids: set[str], object_ids: list[str]) -> list[dict[str, Any]]:
    clauses = [f"contains(#pa, :o{i})" for i in range(len(object_ids))]
    vals = dal.values(**{f"o{i}": o for i, o in enumerate(object_ids)})
    ids = sorted(request_ids)[:90]
    if ids:
        clauses.append("request_id IN (" + ", ".join(f":r{i}" for i in range(len(ids))) + ")")
        vals |= dal.values(**{f"r{i}": r for i, r in enumerate(ids)})
    rows: list[dict[str, Any]] = []
    last: str | None = None
    for _ in range(MAX_LOG_PAGES):
        items, last = dal.query_page(dal.request_logs_table(), f"LOG#{p.merchant_id}#{p.mode}", newest_first=False,
                                     sk_from=clock.sortable(since), start_sk=last, filter_expression=" OR ".join(clauses),
                                     names={"#pa": "path"}, vals=vals, page_size=LOG_PAGE)
        rows += items
        if last is None:
            break
    return rows


def _actor(log: dict[str, Any]) -> str:
    if log.get("user"):
        return f"Dashboard user {log['user']}"
    if log["path"].startswith("/public/"):
        return "Customer checkout"
    return "Merchant backend"


def _request_entry(log: dict[str, Any]) -> dict[str, Any]:
    sig = log.get("signature") or {}
    return {"at": log["received_at"], "kind": "request", "actor": _actor(log), "action": f"{log['method']} {log['path']}",
            "result": status_text(int(log["status"])), "status": "passed" if int(log["status"]) < 400 else "failed",
            "ids": {"request_id": log["request_id"], **({"key_id": log["key_id"]} if log.get("key_id") else {})},
            "detail": {"latency_ms": log["latency_ms"], "idempotency_key": log.get("idempotency_key"),
                       "signature": sig.get("outcome"), "error_code": log.get("error_code")}}


def _event_entry(event: dict[str, Any]) -> dict[str, Any]:
    payload = payload_of(event)
    obj = payload["data"]["object"]
    return {"at": event["created_at"], "kind": "event", "actor": "Tahsil", "action": f"{event['type']} recorded",
            "result": obj.get("status", ""), "status": "recorded",
            "ids": {"event_id": event["id"], "object_id": event["object_id"],
                    **({"request_id": payload["request"]["id"]} if (payload.get("request") or {}).get("id") else {})},
            "detail": {"sequence": event.get("sequence")}}


def _attempt_entry(event: dict[str, Any], attempt: dict[str, Any]) -> dict[str, Any]:
    ok = attempt["status_code"] is not None and 200 <= attempt["status_code"] < 300
    return {"at": attempt["at"], "kind": "webhook_attempt", "actor": "Merchant webhook endpoint",
            "action": f"signed {event['type']} POSTed to {attempt['url']}",
            "result": status_text(attempt["status_code"], attempt.get("error_class")),
            "status": "delivered" if ok else "retrying" if attempt.get("next_retry_at") else "failed",
            "ids": {"event_id": event["id"], "endpoint_id": attempt["endpoint_id"],
                    "attempt_id": deliveries.attempt_id(event["id"], attempt["endpoint_id"], attempt["round"], attempt["number"])},
            "detail": {"latency_ms": attempt["latency_ms"], "round": attempt["round"], "number": attempt["number"],
                       "response": (attempt.get("response_prefix") or "")[:200], "next_retry_at": attempt.get("next_retry_at")}}


def _fulfillment_entry(item: dict[str, Any]) -> dict[str, Any]:
    return {"at": item["created_at"], "kind": "fulfillment", "actor": "Merchant operations",
            "action": "fulfillment recorded", "result": item["reference"], "status": "fulfilled",
            "ids": {"fulfillment_id": item["id"], **({"request_id": item["request_id"]} if item.get("request_id") else {})},
            "detail": {"note": item.get("note")}}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _step(step: str, actor: str, action: str, question: str, result: str, evidence: list[str], status: str) -> dict[str, Any]:
    return {"step": step, "actor": actor, "action": action, "question": question, "result": result,
            "evidence": [e for e in evidence if e], "status": status}


def trace(p: Principal, payment_id: str) -> dict[str, Any]:
    item = payments.load_payment(p, payment_id)
    now = clock.now()
    payment = payments.view(item, now)
    intent_id = (item.get("metadata") or {}).get("payment_intent")
    intent_item = None
    if intent_id and looks_like("pi", intent_id):
        try:
            intent_item = intents.load(p, intent_id)
        except NotFound:
            intent_item = None
    started = min([_when(item["created_at"])] + ([_when(intent_item["created_at"])] if intent_item else []))
    wanted = {payment_id: int(item.get("version") or 1)}
    if intent_item:
        wanted[intent_item["id"]] = int(intent_item.get("version") or 1)
    events = _events(p, started - LEAD, wanted)

    timeline: list[dict[str, Any]] = [_event_entry(e) for e in events]
    delivery_of: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        rows = dal.query_partition(dal.payments_table(), delivery_partition(event["id"]), "DLV#")
        summaries = [r for r in rows if r["sk"].count("#") == 1]
        delivery_of[event["id"]] = summaries
        for summary in summaries:
            for attempt in deliveries.attempts(event["id"], summary["endpoint_id"]):
                timeline.append(_attempt_entry(event, attempt))
    request_ids = {r for e in timeline if e["kind"] == "event" for r in [e["ids"].get("request_id")] if r}
    fulfillment = dal.get(dal.payments_table(), item["pk"], "FUL")
    if fulfillment and fulfillment.get("request_id"):
        request_ids.add(fulfillment["request_id"])
    logs = _logs(p, started - LEAD, request_ids, [payment_id] + ([intent_item["id"]] if intent_item else []))
    timeline += [_request_entry(log) for log in logs]
    if fulfillment:
        timeline.append(_fulfillment_entry(fulfillment))
    # Events and attempts carry whole seconds, request logs microseconds: within one second, a request comes
    # before the event it caused, and the event before its webhook attempts.
    timeline.sort(key=lambda e: (_when(e["at"]).replace(microsecond=0), _ORDER[e["kind"]], _when(e["at"])))

    handoff = _handoff(payment, intent_item, events, delivery_of, logs, fulfillment, timeline)
    ids = {
        "request_ids": sorted({log["request_id"] for log in logs} | request_ids),
        "event_ids": [e["id"] for e in events],
        "endpoint_ids": sorted({d["endpoint_id"] for ds in delivery_of.values() for d in ds}),
        "attempt_ids": [e["ids"]["attempt_id"] for e in timeline if e["kind"] == "webhook_attempt"],
    }
    statuses = [s["status"] for s in handoff[:4]]
    return {
        "object": "payment_trace", "payment": payment,
        "payment_intent": intents.view(intent_item, now) if intent_item else None,
        "status": "fulfilled" if fulfillment else payment["status"],
        "handoff": handoff, "timeline": timeline, "ids": ids,
        "fulfillment": fulfillment_view(fulfillment) if fulfillment else None,
        "complete": statuses == ["passed", "captured", "delivered", "fulfilled"],
    }


def _handoff(payment: dict[str, Any], intent: dict[str, Any] | None, events: list[dict[str, Any]],
             delivery_of: dict[str, list[dict[str, Any]]], logs: list[dict[str, Any]], fulfillment: dict[str, Any] | None,
             timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def request_of(object_id: str, *types: str) -> str | None:
        for e in events:
            if e["object_id"] == object_id and (not types or e["type"] in types):
                return (payload_of(e).get("request") or {}).get("id")
        return None

    steps = []
    if intent:
        req = request_of(intent["id"], "payment_intent.created")
        steps.append(_step("checkout", "Merchant backend", "Create checkout session",
                           "Can the merchant create a payable Tahsil page?", intent["id"], [intent["id"], req or ""],
                           "passed"))
    else:
        req = request_of(payment["id"])
        steps.append(_step("checkout", "Merchant backend", "Create the payment (API)",
                           "Did the merchant's server ask for this payment?", "payment created", [req or ""],
                           "passed" if req else "missing"))

    captured = payment["captured_amount"] > 0
    money = checkout.format_money(payment["captured_amount"] or payment["amount"], payment["currency"])
    steps.append(_step("capture", "Customer checkout" if intent else "Merchant backend",
                       "Capture payment after customer approval", "Did the customer's money move?",
                       money if captured else f"{money} ({payment['status']})", [payment["id"]],
                       "captured" if captured else payment["status"]))

    captured_events = [e for e in events if e["object_id"] == payment["id"] and e["type"] == "payment.captured"]
    if not captured_events:
        steps.append(_step("webhook", "Merchant developer", "Verify signed payment.captured webhook",
                           "Can the merchant's system trust the event?", "no payment.captured event yet", [],
                           "not_applicable" if not captured else "pending"))
    else:
        event = captured_events[-1]
        rows = delivery_of.get(event["id"]) or []
        attempts = [t for t in timeline if t["kind"] == "webhook_attempt" and t["ids"]["event_id"] == event["id"]]
        if not rows:
            status, result = ("no_endpoint", "no webhook endpoint subscribed") if event.get("deliveries_total") == 0 \
                else ("pending", "not delivered yet")
        elif any(r["status"] == "delivered" for r in rows):
            status = "delivered"
            good = [t for t in attempts if t["status"] == "delivered"]
            result = good[-1]["result"] if good else "delivered"
        elif any(r["status"] == "failed" for r in rows):
            status, result = "failed", attempts[-1]["result"] if attempts else "failed"
        else:
            status, result = "retrying", attempts[-1]["result"] if attempts else "pending"
        steps.append(_step("webhook", "Merchant developer", "Verify signed payment.captured webhook",
                           "Can the merchant's system trust the event?", result,
                           [event["id"]] + [t["ids"]["attempt_id"] for t in attempts[-1:]], status))

    if fulfillment:
        steps.append(_step("fulfillment", "Merchant operations", "Mark the order fulfilled",
                           "Can the merchant stop reminders and ship?", fulfillment["reference"], [fulfillment["id"]],
                           "fulfilled"))
    else:
        steps.append(_step("fulfillment", "Merchant operations", "Mark the order fulfilled",
                           "Can the merchant stop reminders and ship?", "not recorded (POST /v1/payments/{id}/fulfillment)",
                           [], "pending"))

    endpoints = sorted({d["endpoint_id"] for ds in delivery_of.values() for d in ds})
    proven = steps[2]["status"] == "delivered" and bool(logs)
    steps.append(_step("support", "Support and developer ops", "Trace webhook and request logs",
                       "Can support prove delivery if the merchant asks?",
                       f"{_count(len(logs), 'request')}, {_count(len(events), 'event')}, "
                       f"{_count(sum(1 for t in timeline if t['kind'] == 'webhook_attempt'), 'webhook attempt')}",
                       endpoints + [t["ids"]["attempt_id"] for t in timeline if t["kind"] == "webhook_attempt"][-1:],
                       "traceable" if proven else "partial"))
    return steps
