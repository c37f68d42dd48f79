"""Fan-out: each new event row becomes one delivery message per subscribed endpoint (the deliver
function's queue). Runs from the payments table's stream (functions/webhooks/fanout)."""

from __future__ import annotations

from typing import Any

from tahsil.store import dal
from tahsil.webhooks import endpoints
from tahsil.webhooks.message import Message, enqueue


def fan_out(event: dict[str, Any]) -> int:
    """Queue the first attempt of each of the event's deliveries. Safe to run twice.

    Nothing is written for an event with endpoints: its first attempt creates the delivery row (the
    message says how many endpoints the event went to, ``of``). An event nobody subscribes to is marked
    ``deliveries_total = 0`` (a SET: idempotent), so the events API can tell it from one not fanned out yet.
    """
    table = dal.payments_table()
    # the stream is the source, the table the truth; an event row never changes what fan-out reads, so an
    # eventually consistent read (half the price) does, with a strongly consistent one if it does not see it yet
    key = (event["pk"], event.get("sk") or "EVT")
    stored = dal.get(table, *key, consistent=False) or dal.get(table, *key)
    if stored is None:
        return 0
    target = stored.get("target_endpoint_id")
    candidates = endpoints.owner_endpoints(stored["merchant_id"], stored["mode"])
    if target:  # a test event goes to the endpoint it was sent for, whatever it subscribes to
        wanted = [e for e in candidates if e["id"] == target and e["status"] == "enabled"]
    else:
        wanted = [e for e in candidates if endpoints.subscribed(e, stored["type"])]
    if not wanted:
        dal.update(table, stored["pk"], stored["sk"], "SET deliveries_total = :n", vals=dal.values(n=0))
    enqueue([Message(stored["id"], e["id"], 0, of=len(wanted), merchant_id=stored["merchant_id"], mode=stored["mode"])
             for e in wanted])
    return len(wanted)
