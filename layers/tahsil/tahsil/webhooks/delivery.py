"""Delivery: attempts, their schedule and the delivery state.

Pipeline (see docs/webhooks.md):
  state change + event row (one transaction)
    -> DynamoDB stream -> ``tahsil.webhooks.fanout``: one delivery message per subscribed endpoint
    -> delivery queue -> attempt #1 (the deliver function, a batch at a time): creates the delivery row, and
       adds to the delivery counters in the same transaction (``tahsil.store.counters``, scope
       DLV#<merchant>#<mode>)
    -> on failure, a Step Functions execution: wait per schedule -> attempt -> decide -> ...
Every step carries the same ``tahsil.webhooks.message.Message``.

Rows (PaymentsTable), in the event's delivery partition (one query reads an event's whole log):
  EVT#<evt> / DLV#<endpoint>          one delivery (in no index): status, attempts, round, next retry, ``of``
                                      (the event's endpoints at fan-out); the attempt that delivered
                                      (``delivered_attempt``: time, URL, status code...)
  EVT#<evt> / DLV#<endpoint>#<round>#<nnn>   one attempt that did not deliver (or one a redeliver moved out)

An attempt: the endpoint read (strongly consistent), the URL checked by the guard (``tahsil.webhooks.guard``),
the event rendered for the endpoint (``tahsil.webhooks.rendering``), signed (``tahsil.webhooks.signing``) and
POSTed (``tahsil.webhooks.transport``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.telemetry import metrics
from tahsil.store import aws, counters, dal
from tahsil.webhooks import endpoints, guard, outbox, rendering, signing, transport
from tahsil.webhooks.message import Message

DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)  # seed 004: after the immediate attempt


@functools.cache
def schedule() -> tuple[int, ...]:
    """Seconds to wait before each retry (template parameter WebhookRetrySchedule)."""
    raw = os.environ.get("WEBHOOK_RETRY_SCHEDULE") or ",".join(map(str, DEFAULT_SCHEDULE))
    try:
        waits = tuple(int(s) for s in raw.split(",") if s.strip())
    except ValueError as exc:
        raise RuntimeError(f"WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, got {raw!r}") from exc
    if not waits or any(w < 0 for w in waits):
        raise RuntimeError("WEBHOOK_RETRY_SCHEDULE needs at least one non-negative wait")
    return waits


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"missing environment variable {name}")
    return value


DELIVERED_ATTEMPT = "delivered_attempt"
ATTEMPT_FIELDS = ("round", "number", "at", "url", "status_code", "latency_ms", "error_class", "response_prefix",
                  "next_retry_at")


def attempt_sk(endpoint_id: str, round_: int, number: int) -> str:
    return f"DLV#{endpoint_id}#{round_:03d}#{number:03d}"


def is_summary(row: dict[str, Any]) -> bool:
    """A delivery row (``DLV#<endpoint>``), not one of its attempt rows."""
    return row["sk"].startswith("DLV#") and row["sk"].count("#") == 1


def attempt_history(summary: dict[str, Any] | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One delivery's attempts, oldest first: its attempt rows (``rows`` may hold other rows of the event's
    partition) and the delivering attempt kept in the delivery row (``summary``)."""
    if summary is None:
        return []
    prefix = f"{summary['sk']}#"
    tries = [{k: r.get(k) for k in ATTEMPT_FIELDS} for r in rows if r["sk"].startswith(prefix)]
    if summary.get(DELIVERED_ATTEMPT):
        tries.append({k: summary[DELIVERED_ATTEMPT].get(k) for k in ATTEMPT_FIELDS})
    return sorted(tries, key=lambda t: (int(t["round"]), int(t["number"])))


COUNTER_TTL = dt.timedelta(days=35)  # the overview's window is at most 31 days
RESOLUTIONS = (counters.MINUTE,)  # per minute only: a batch adds to one counter item (readers sum minutes)
FINAL = ("delivered", "failed")


def counter_fields(event_type: str, endpoint_id: str, *, started: bool, ok: bool, failed: bool) -> dict[str, int]:
    """What one attempt adds to the delivery counters (``tahsil.store.counters``, scope ``DLV#<merchant>#<mode>``).

    ``n`` deliveries started (a round's first attempt), ``at`` attempts, ``dd`` delivered, ``df`` failed for
    good; ``n``, ``dd`` and ``df`` per endpoint too (``n.<endpoint>`` ...); ``pcd`` delivered payment.captured
    events.
    """
    counts = {"at": 1}
    for name, flag in (("n", started), ("dd", ok), ("df", failed)):
        if flag:
            counts[name] = 1
            counts[f"{name}.{endpoint_id}"] = 1
    if ok and event_type == "payment.captured":
        counts["pcd"] = 1
    return counts


@dataclass
class _Plan:
    message: Message
    unit: counters.Unit
    outcome: str
    wait: int | None
    disabled_endpoint: bool


def _prepare(message: Message) -> _Plan | None:
    """Make the attempt (the HTTP POST) and compose its writes; None when there is nothing to do."""
    waits = message.schedule or schedule()
    number, round_, endpoint_id, event_id = message.attempt, message.round, message.endpoint_id, message.event_id
    table = dal.payments_table()
    pk, sk = f"EVT#{event_id}", f"DLV#{endpoint_id}"
    delivery = dal.get(table, pk, sk)
    if delivery is None:
        if number != 1 or round_ != 0:
            return None  # later attempts and new rounds always follow a row
    elif (number == 1 and delivery["round"] == round_ and delivery["attempts"] == 1 and delivery["status"] == "retrying"
          and delivery.get("next_retry_at")):
        # Recorded, but the retries may not have started (the message came back): start them again (a no-op if
        # they run: the execution is named after the delivery).
        left = dt.datetime.fromisoformat(delivery["next_retry_at"].replace("Z", "+00:00")) - clock.now()
        return _Plan(message, counters.Unit(actions=[]), "retry", max(0, int(left.total_seconds())), False)
    elif delivery["round"] != round_ or delivery["status"] in FINAL or delivery["attempts"] >= number:
        return None
    # Where the event row is: the message says (a later attempt's delivery row says it too); a first attempt
    # queued before events moved into their merchant's partition says nothing, and its event has the old key.
    merchant_id, mode = message.merchant_id or (delivery or {}).get("merchant_id"), message.mode or (delivery or {}).get("mode")
    event = outbox.find_event(merchant_id, mode, event_id)
    if event is None:
        return None
    # the endpoint decides the attempt (enabled? which URL? which secrets sign it?): strongly consistent, so a
    # delivery right after a disable, a URL change or a rotation follows it
    endpoint = dal.get(dal.credentials_table(), f"WHE#{endpoint_id}", "WHE")
    now = clock.now()
    body = rendering.body_for(endpoint, event)
    if endpoint is None or endpoint["status"] != "enabled":
        answer = transport.Answer(status=None, body_prefix=b"", elapsed_ms=0, error_class="endpoint_disabled")
    else:
        try:
            target = endpoints.check_url(endpoint["url"], endpoint["mode"])
            answer = transport.post(target, body, signing.signed_headers(endpoint, event_id, body, now))
        except guard.UnsafeUrl as exc:
            answer = transport.Answer(status=None, body_prefix=b"", elapsed_ms=0, error_class=f"unsafe_url: {exc.message}")

    ok = answer.status is not None and 200 <= answer.status < 300
    gone = answer.status == 410
    final_failure = not ok and (gone or number >= 1 + len(waits) or answer.error_class == "endpoint_disabled")
    status = "delivered" if ok else ("failed" if final_failure else "retrying")
    wait = None if ok or final_failure else waits[number - 1]
    next_retry_at = clock.iso(now + dt.timedelta(seconds=wait)) if wait is not None else None
    url = endpoint["url"] if endpoint else (delivery or {}).get("url", "")

    facts = {
        "round": round_, "number": number, "at": clock.iso(now), "url": url,
        "status_code": answer.status, "latency_ms": answer.elapsed_ms, "error_class": answer.error_class,
        "response_prefix": answer.body_prefix[:1024].decode("utf-8", "replace"), "next_retry_at": next_retry_at,
    }
    fields = {"status": status, "attempts": number, "last_status_code": answer.status, "last_error": answer.error_class,
              "last_attempt_at": clock.iso(now), "next_retry_at": next_retry_at,
              "delivered_at": clock.iso(now) if ok else None,
              # The attempt that delivered is recorded in the delivery row itself (no row of its own: one write
              # less on the common path); redeliver() moves it to an attempt row before starting a new round.
              DELIVERED_ATTEMPT: {k: v for k, v in facts.items() if v is not None} if ok else None}
    started = clock.iso(now) if number == 1 else (delivery or {}).get("started_at")
    if number == 1:
        fields["started_at"] = started
    actions: list[dict[str, Any]] = []
    if delivery is None:
        # The first attempt creates the delivery row, in its outcome: one conditional put (a second
        # worker, or this message again, finds it there and writes nothing).
        row = {"pk": pk, "sk": sk, "event_id": event_id, "event_type": event["type"], "endpoint_id": endpoint_id,
               "merchant_id": event["merchant_id"], "mode": event["mode"], "url": url, "round": round_,
               "created_at": clock.iso(now), **({"of": message.of} if message.of else {}), **fields}
        actions.append(dal.put_action(table, {k: v for k, v in row.items() if v is not None},
                                      condition="attribute_not_exists(sk)"))
    else:
        present = {k: v for k, v in fields.items() if v is not None}
        absent = [k for k, v in fields.items() if v is None]
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in present)
        if absent:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in absent)
        actions.append(dal.update_action(table, pk, sk, expression, condition="#attempts = :before AND #round = :round",
                                         names={f"#{k}": k for k in fields} | {"#round": "round"},
                                         vals=dal.values(**present, before=number - 1, round=round_)))
    if not ok:
        attempt_row = {"pk": pk, "sk": attempt_sk(endpoint_id, round_, number), "event_id": event_id,
                       "endpoint_id": endpoint_id, **facts}
        actions.append(dal.put_action(table, attempt_row, condition="attribute_not_exists(sk)"))
    if final_failure:  # rare: the event row says which endpoints failed (a set: idempotent), for the list filter
        actions.append(dal.update_action(table, event["pk"], event["sk"], "ADD dlv_failed :ep", condition=None,
                                         vals=dal.values(ep={endpoint_id})))
    if gone and endpoint is not None:
        actions.append(dal.update_action(dal.credentials_table(), endpoint["pk"], "WHE",
                                         "SET #st = :disabled, disabled_reason = :why, updated_at = :now",
                                         condition="#st = :enabled", names={"#st": "status"},
                                         vals=dal.values(disabled="disabled", enabled="enabled", now=clock.iso(now),
                                                         why="the endpoint answered 410 Gone")))
    unit = counters.Unit(actions=actions)
    if started:  # rows written before the counters existed have no start: they are not counted (no backfill)
        unit.scope = counters.delivery_scope(event["merchant_id"], event["mode"])
        unit.moment = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
        unit.ttl = int((unit.moment + COUNTER_TTL).timestamp())
        unit.counts = counter_fields(event["type"], endpoint_id, started=number == 1, ok=ok, failed=final_failure)
        unit.latest = {"lr": {"at": clock.iso(now), "event_id": event_id, "event_type": event["type"],
                              "endpoint_id": endpoint_id, "round": round_, "number": number,
                              "status_code": answer.status, "error_class": answer.error_class,
                              "latency_ms": answer.elapsed_ms}}
        if ok and event["type"] == "payment.captured":
            unit.latest["pc"] = {"at": clock.iso(now), "event_id": event_id, "object_id": event["object_id"]}
    outcome = "delivered" if ok else ("failed" if final_failure else "retry")
    return _Plan(message, unit, outcome, wait, gone and endpoint is not None)


MAX_PARALLEL_ATTEMPTS = 10  # the delivery queue's BatchSize


def attempts(messages: list[Message]) -> list[dict[str, Any] | None]:
    """Make these attempts, then record them all in one transaction with the delivery counters.

    Per message: {"outcome": delivered | retry | failed | skipped, "wait_seconds": ...}, or None when the
    record could not be written (transaction conflicts that outlasted the retries): the caller retries
    the message. Idempotent: an attempt that was already made (a duplicate message or a retried task)
    is skipped, and so is one for a delivery that a redeliver started over; a message redelivered after
    its write is skipped too, so nothing is counted twice.
    """
    results: list[dict[str, Any] | None] = [{"outcome": "skipped"} for _ in messages]
    # The attempts of a batch run side by side: each may wait up to the transport's 15 s total timeout for a slow
    # endpoint, and ten in a row would outlast the function's timeout (and bill every wait).
    if len(messages) > 1:
        with ThreadPoolExecutor(max_workers=min(len(messages), MAX_PARALLEL_ATTEMPTS),
                                thread_name_prefix="attempt") as pool:
            prepared = list(pool.map(_prepare, messages))
    else:
        prepared = [_prepare(m) for m in messages]
    plans: list[tuple[int, _Plan]] = [(i, plan) for i, plan in enumerate(prepared) if plan is not None]
    for i, plan in plans:
        if not plan.unit.actions:
            results[i] = {"outcome": plan.outcome, "wait_seconds": plan.wait}
    plans = [(i, plan) for i, plan in plans if plan.unit.actions]
    written = counters.commit(dal.payments_table(), [plan.unit for _, plan in plans], resolutions=RESOLUTIONS)
    for (i, plan), done in zip(plans, written, strict=True):
        if done is None:
            results[i] = None
        elif done:
            if plan.disabled_endpoint:
                metrics.add_metric(name="WebhookEndpointDisabled", unit="Count", value=1)  # the alarm of that name
            results[i] = {"outcome": plan.outcome, "wait_seconds": plan.wait}
    return results


def attempt(message: Message) -> dict[str, Any]:
    """Make one attempt, record it, and say what comes next (see ``attempts``). The message's ``schedule``
    (seconds before attempts 2, 3, ...) travels in the state machine's input, so a test can shorten it."""
    [result] = attempts([message])
    if result is None:
        raise RuntimeError(f"could not record attempt {message.attempt} of {message.event_id} to {message.endpoint_id} "
                           "(write conflicts)")
    return result


def start_retries(message: Message, wait_seconds: int) -> None:
    """Hand the delivery to Step Functions at its next attempt; the execution name makes a second start a no-op."""
    client = aws.client("stepfunctions")
    state = {**message.next_attempt(schedule()).encode(), "wait_seconds": wait_seconds}
    name = f"{message.event_id}-{message.endpoint_id}-{message.round}"[:80]
    try:
        client.start_execution(stateMachineArn=_env("RETRY_STATE_MACHINE_ARN"), name=name, input=json.dumps(state))
    except client.exceptions.ExecutionAlreadyExists:
        pass


def retry_step(state: dict[str, Any]) -> dict[str, Any]:
    """One Step Functions task: attempt, then tell the state machine whether to wait again (``outcome``,
    ``wait_seconds``); its input and output are an encoded ``Message``."""
    message = Message.decode(state)
    result = attempt(message)
    out: dict[str, Any] = {**message.next_attempt(schedule()).encode(), "outcome": result["outcome"]}
    if result["outcome"] == "retry":
        out["wait_seconds"] = result["wait_seconds"]
    return out
