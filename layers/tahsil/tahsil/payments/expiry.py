"""Expiry: the timers that make stored state, events and transactions agree with the clock.

Reads already report an authorization past ``expires_at`` as expired. An authorization has two
deadlines, applied by a time wheel (``register``): buckets of EXPIRY_BUCKET_SECONDS, each swept
by one Step Functions execution once it ends (``sweep``):
  1. at ``expires_at - EXPIRY_WARNING`` it emits ``payment.authorization_expiring``;
  2. at ``expires_at`` it flips authorized -> expired, with an ``expiry`` transaction and
     ``payment.expired``, in one conditional transaction.
Only the next deadline is on the wheel at any time (one wheel write per step, not two up
front): the outbox stream registers the warning when ``payment.authorized`` is written, and
the expiry when ``payment.authorization_expiring`` is written (``next_deadlines``). A payment
captured or voided before its warning thus costs one wheel item and nothing at its expiry.
A payment captured or voided first makes both steps no-ops (their conditions fail), so a
capture racing the expiry has exactly one winner. Test-mode time travel (``advance``) runs
the same steps, so the sweep later finds nothing to do.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.errors import ConcurrentUpdate, NotFound
from tahsil.kernel.events import RequestContext, event_row, payload_of
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import logger
from tahsil.payments import authentication
from tahsil.payments.payments import load_payment, view
from tahsil.store import aws, dal

EXPIRY_WARNING = dt.timedelta(hours=24)
RETRIES = 8


def warning_lead() -> dt.timedelta:
    seconds = os.environ.get("EXPIRY_WARNING_SECONDS")
    return dt.timedelta(seconds=int(seconds)) if seconds else EXPIRY_WARNING


def _owner(item: dict[str, Any]) -> Principal:
    return Principal(merchant_id=item["merchant_id"], mode=item["mode"], key_id="", key_type="system",
                     api_version=item.get("api_version") or Principal.__dataclass_fields__["api_version"].default)


def _load(payment_id: str) -> dict[str, Any] | None:
    return dal.get(dal.payments_table(), f"PAY#{payment_id}", "PAY")


def warn(payment_id: str, ctx: RequestContext | None = None) -> bool:
    """Emit payment.authorization_expiring once, if the payment is still authorized and the time has come.

    True if this call did it, False if there was nothing to do; ConcurrentUpdate if it could not."""
    table = dal.payments_table()
    for _ in range(RETRIES):
        item = _load(payment_id)
        now = clock.now()
        if (item is None or item["status"] != "authorized" or item.get("expiring_notified_at")
                or clock.iso(now) < clock.iso(clock.parse(item["expires_at"]) - warning_lead())):
            return False
        version = item["version"]
        updated = {**item, "expiring_notified_at": clock.iso(now), "version": version + 1}
        actions = [
            dal.update_action(table, item["pk"], "PAY", "SET expiring_notified_at = :now, #version = :next",
                              condition="#status = :authorized AND attribute_not_exists(expiring_notified_at) AND #version = :seen",
                              names={"#status": "status", "#version": "version"},
                              vals=dal.values(now=clock.iso(now), next=version + 1, seen=version, authorized="authorized")),
            dal.put_action(table, event_row(_owner(item), ctx, type_="payment.authorization_expiring", obj=view(updated, now),
                                            sequence=version + 1, previous={}, now=now)),
        ]
        try:
            dal.transact(actions)
            return True
        except dal.ConditionFailed:
            continue
    raise ConcurrentUpdate(f"could not warn {payment_id}: {RETRIES} write conflicts")


def expire(payment_id: str, ctx: RequestContext | None = None) -> bool:
    """authorized -> expired once expires_at has passed: the hold is released, through the payment's connector
    (the simulator at once; a processor by a cancel its notification settles). True if this call did it."""
    from tahsil.payments import modifications

    return modifications.expire(payment_id, ctx)


MAX_EARLY = dt.timedelta(seconds=10)

# ------------------------------------------------------------------ the time wheel
#
# A deadline (warn or expire a payment, expire an intent) is an item in the bucket that ends at
# or after it: pk WHEEL#<bucket end, epoch seconds>#<shard>, sk <id>#<action>. One Standard
# execution per bucket and shard count (named after both, so starting it twice is a no-op) waits
# until the bucket ends and sweeps its items page by page with the same conditional writes. A
# payment captured or voided first is skipped (its condition fails, nothing is written); the items
# expire by TTL.
#
# The shard count (ExpiryWheelShards) may change while deadlines are pending: a deadline is written
# under the count its writer has, and that writer starts the execution of that bucket and count,
# which sweeps exactly the shards that count names. A bucket written under two counts (across a
# change, or while old and new containers run side by side) thus has two executions, each sweeping
# its own shards (the shards both name are swept twice: the second pass finds nothing to do). No
# item records its count and nothing is re-homed: no write per payment, and none at the change.

WHEEL = "WHEEL#"
WHEEL_TTL = 8 * 86400  # bucket items outlive their sweep by a week, then DynamoDB deletes them for free
SWEEP_THREADS = 8


def bucket_seconds() -> int:
    return max(1, int(os.environ.get("EXPIRY_BUCKET_SECONDS") or 60))


def wheel_shards() -> int:
    return max(1, int(os.environ.get("EXPIRY_WHEEL_SHARDS") or 1))


def sweep_page_size() -> int:
    return max(1, int(os.environ.get("EXPIRY_SWEEP_PAGE_SIZE") or 500))


def bucket_of(at: dt.datetime) -> int:
    """The end of the bucket holding a deadline (epoch seconds): the first bucket boundary at or after it."""
    length = bucket_seconds()
    return -(-math.ceil(at.timestamp()) // length) * length


def _shard(item_id: str, shards: int) -> int:
    return zlib.crc32(item_id.encode()) % shards


def deadlines(event: dict[str, Any]) -> list[dict[str, str]]:
    """The deadlines an outbox event's object has still ahead, in order: an authorization's warning
    and expiry (only the expiry once the warning is sent), an intent's expiry."""
    obj = payload_of(event)["data"]["object"] if "payload" in event else event["object"]
    if event["type"] == "payment.authorized" and obj.get("expires_at"):
        expires_at = clock.parse(obj["expires_at"])
        warn_at = max(expires_at - warning_lead(), clock.parse(obj["created_at"]))
        return [{"kind": "payment", "id": obj["id"], "action": "warn", "at": clock.iso(warn_at)},
                {"kind": "payment", "id": obj["id"], "action": "expire", "at": clock.iso(expires_at)}]
    if event["type"] == "payment.authorization_expiring" and obj.get("status") == "authorized" and obj.get("expires_at"):
        return [{"kind": "payment", "id": obj["id"], "action": "expire", "at": obj["expires_at"]}]
    if event["type"] == "payment.requires_action":  # 3-D Secure: abandoned after an hour without the shopper
        at = clock.parse(obj["created_at"]) + authentication.ABANDON_AFTER
        return [{"kind": "payment", "id": obj["id"], "action": "abandon", "at": clock.iso(at)}]
    if event["type"] == "payment_intent.created" and obj.get("expires_at"):
        return [{"kind": "payment_intent", "id": obj["id"], "action": "expire", "at": obj["expires_at"]}]
    return []


def next_deadlines(event: dict[str, Any]) -> list[dict[str, str]]:
    """What an outbox event puts on the wheel: the first of its object's deadlines only.

    The warning's own event (written by ``warn`` in the same transaction) brings the expiry, so a
    payment captured or voided before its warning never writes its expiry to the wheel.
    """
    return deadlines(event)[:1]


def execution_input(bucket: int, shards: int | None = None) -> dict[str, Any]:
    """The execution input of a bucket written under ``shards`` (by default the current count);
    identical from every caller, so StartExecution is idempotent."""
    return {"bucket": bucket, "due_at": clock.iso(dt.datetime.fromtimestamp(bucket, dt.UTC)),
            "shards": shards or wheel_shards(), "shard": 0, "cursor": None, "done": False, "seen": 0, "acted": 0,
            "deferred": 0}


def execution_name(bucket: int, shards: int) -> str:
    """One execution per bucket and shard count: ``wheel-60s-<bucket>`` for one shard (the name it has
    always had), ``wheel-60s-<bucket>-x<shards>`` for more."""
    name = f"wheel-{bucket_seconds()}s-{bucket}"
    return name if shards == 1 else f"{name}-x{shards}"


_started: set[tuple[str, str]] = set()  # (state machine, execution) this container has started: no second call


def _start_bucket(bucket: int, shards: int) -> None:
    machine = os.environ["EXPIRY_STATE_MACHINE_ARN"]
    name = execution_name(bucket, shards)
    if (machine, name) in _started:
        return
    client = aws.client("stepfunctions")
    try:
        client.start_execution(stateMachineArn=machine, name=name, input=json.dumps(execution_input(bucket, shards)))
    except client.exceptions.ExecutionAlreadyExists:
        pass  # started by an earlier deadline in this bucket and count (or its sweep has already run: see register)
    if len(_started) > 10_000:
        _started.clear()
    _started.add((machine, name))


def register(items: list[dict[str, str]]) -> list[int]:
    """Put deadlines on the wheel and make sure their buckets' executions run; returns the buckets.

    The item is written before the execution is started, and an execution sweeps only after its
    bucket has ended, so a deadline registered before its bucket ends is always seen. One whose
    bucket has already ended (a late stream record, an expiry registered by a late warning) is
    due: it is applied here and now, and not written.
    """
    if not items:
        return []
    shards = wheel_shards()
    now = clock.now().timestamp()
    rows, due = [], []
    for d in items:
        bucket = bucket_of(clock.parse(d["at"]))
        if bucket <= now:
            due.append(d)  # its sweep may be over: nothing to write, it is applied below
            continue
        rows.append({"pk": f"{WHEEL}{bucket}#{_shard(d['id'], shards)}", "sk": f"{d['id']}#{d['action']}",
                     "kind": d["kind"], "action": d["action"], "ttl": bucket + WHEEL_TTL})
    buckets = sorted({int(r["pk"].split("#")[1]) for r in rows})
    failed = dal.batch_put(dal.payments_table(), rows)
    if failed:
        raise RuntimeError(f"{len(failed)} deadline(s) not written to the wheel")  # the stream retries the record
    for bucket in buckets:
        _start_bucket(bucket, shards)
    _apply_or_defer([{"kind": d["kind"], "id": d["id"], "action": d["action"]} for d in due])
    return buckets


def act(kind: str, item_id: str, action: str) -> bool:
    """Apply one deadline with its conditional write: True if it did something, False if there was
    nothing (left) to do (captured, voided, already applied, not yet due). It raises when it could
    not (write conflicts that persisted, a throttle, any error): the caller retries it (``defer``)."""
    if kind != "payment":
        from tahsil.payments import intents

        return intents.expire(item_id) if action == "expire" else False
    if action == "abandon":
        from tahsil.payments import challenge

        return challenge.abandon(item_id)
    # A payment is always warned before it expires, whichever deadline is swept. A warning swept
    # after its expiry has come too (a bucket longer than the warning's lead, a late sweep) also
    # expires it here: its event then reports the payment expired and registers nothing.
    warned = warn(item_id)
    return expire(item_id) or warned


def sweep(state: dict[str, Any]) -> dict[str, Any]:
    """The state machine's task: one page of one shard of a bucket, then where to carry on.

    ``state`` is the execution input (see ``execution_input``) or the previous page's answer;
    ``done`` becomes true after the last page of the last shard. A Wait state may end a little
    before its timestamp (emulators truncate, clocks drift): woken up to MAX_EARLY early, the
    task sleeps the rest so every deadline of the bucket has come when it acts.
    """
    early = state["bucket"] - clock.now().timestamp()
    if 0 < early <= MAX_EARLY.total_seconds():
        time.sleep(early + 0.05)
    shard, shards = int(state["shard"]), int(state["shards"])
    page, cursor = dal.query_page(dal.payments_table(), f"{WHEEL}{state['bucket']}#{shard}", newest_first=False,
                                  start_sk=state.get("cursor"), page_size=sweep_page_size(), consistent=True)
    acted, deferred = _apply_or_defer([{"kind": row["kind"], "id": row["sk"].rsplit("#", 1)[0], "action": row["action"]}
                                       for row in page])
    if cursor is None:
        shard, cursor = shard + 1, None
    return {**state, "shard": shard, "cursor": cursor, "done": shard >= shards,
            "seen": int(state.get("seen", 0)) + len(page), "acted": int(state.get("acted", 0)) + acted,
            "deferred": int(state.get("deferred", 0)) + deferred}


# ------------------------------------------------------------------ deadlines that could not be applied
#
# "Nothing to do" (act returns False) is done. "Could not do it" (act raises) is never dropped: the
# deadline goes to ExpiryRetryQueue, whose worker (``retry``, ExpiryRetryFunction) applies it again,
# backing off 10 s, 20 s, 40 s ... up to 15 minutes between receives; after the queue's
# maxReceiveCount SQS moves it to ExpiryDLQ (alarmed), and `tahsil ops redrive` sends it back to
# ExpiryRetryQueue once the cause is fixed. A page the sweep could not read at all (after the state
# machine's own retries) takes the same path: the state machine's Catch sends the sweep's state to
# ExpiryRetryQueue, and the worker sweeps on from there, one page per message.

RETRY_DELAY_CAP = 900  # seconds: SQS's longest DelaySeconds, and the longest backoff between receives


def retry_base_seconds() -> int:
    seconds = os.environ.get("EXPIRY_RETRY_BASE_SECONDS")
    return max(0, int(seconds)) if seconds else 10


def retry_delay(attempt: int) -> int:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): doubling from the base, at most 15 minutes."""
    return min(RETRY_DELAY_CAP, retry_base_seconds() * 2 ** min(max(0, attempt - 1), 16))


def defer(messages: list[dict[str, Any]], *, delay: int | None = None) -> None:
    """Hand deadlines (or a sweep's state) to ExpiryRetryQueue; raises unless SQS took every one, so
    the caller's own retry (the state machine's, the stream's) covers a failed hand-over."""
    url = os.environ["EXPIRY_RETRY_QUEUE_URL"]
    sqs = aws.client("sqs")
    wait = retry_delay(1) if delay is None else delay
    for start in range(0, len(messages), 10):
        chunk = messages[start:start + 10]
        answer = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "MessageBody": json.dumps(m, sort_keys=True), "DelaySeconds": min(RETRY_DELAY_CAP, wait)}
            for n, m in enumerate(chunk)])
        if answer.get("Failed"):
            raise RuntimeError(f"{len(answer['Failed'])} deadline(s) not handed to the retry queue")


def _attempt(deadline: dict[str, str]) -> bool | None:
    """act, with "could not" as None (logged) instead of an exception."""
    try:
        return act(deadline["kind"], deadline["id"], deadline["action"])
    except Exception as exc:  # noqa: BLE001 - whatever it was, the deadline is retried, never dropped
        logger.warning("expiry deadline not applied; retrying it later",
                       extra={"deadline": deadline, "error": repr(exc)})
        return None


def _apply_or_defer(deadlines: list[dict[str, str]]) -> tuple[int, int]:
    """Apply deadlines (8 at a time) and defer those that could not be applied: (applied, deferred)."""
    if not deadlines:
        return 0, 0
    with ThreadPoolExecutor(max_workers=min(SWEEP_THREADS, len(deadlines))) as pool:
        results = list(pool.map(_attempt, deadlines))
    failed = [d for d, r in zip(deadlines, results, strict=True) if r is None]
    if failed:
        defer(failed)
    return sum(r is True for r in results), len(failed)


def retry(message: dict[str, Any]) -> bool | dict[str, Any]:
    """ExpiryRetryFunction's work for one message: a deferred deadline (applied, or raising again),
    or a sweep's state handed over by the state machine (one page swept, the next handed on)."""
    if "bucket" in message:
        state = sweep({k: v for k, v in message.items() if k != "error"})
        if not state["done"]:
            defer([state], delay=0)
        return state
    return act(message["kind"], message["id"], message["action"])


def back_off(receipt_handle: str, receive_count: int) -> None:
    """Before a failed message goes back to the queue: make it invisible for the next backoff step
    (SQS otherwise redelivers it after the queue's fixed visibility timeout)."""
    try:
        aws.client("sqs").change_message_visibility(QueueUrl=os.environ["EXPIRY_RETRY_QUEUE_URL"],
                                                    ReceiptHandle=receipt_handle,
                                                    VisibilityTimeout=retry_delay(receive_count + 1))
    except Exception as exc:  # noqa: BLE001 - the message still comes back, after the queue's visibility timeout
        logger.warning("could not back the expiry retry off", extra={"error": repr(exc)})


def start_timer(event: dict[str, Any]) -> list[int]:
    """From the outbox: a new authorization (or payment intent) puts its first deadline on the wheel,
    an authorization's warning its expiry."""
    return register(next_deadlines(event))


def advance(p: Principal, payment_id: str, seconds: int) -> dict[str, Any]:
    """Test mode: move this payment's deadlines ``seconds`` closer and apply what falls due, in order."""
    if p.livemode:
        raise NotFound("no such endpoint in live mode", param="path")
    item = load_payment(p, payment_id)
    if item["status"] == "authorized" and item.get("expires_at"):
        shifted = clock.iso(clock.parse(item["expires_at"]) - dt.timedelta(seconds=seconds))
        try:
            dal.update(dal.payments_table(), item["pk"], "PAY", "SET expires_at = :shifted",
                       names={"#status": "status"}, vals=dal.values(shifted=shifted, authorized="authorized"),
                       condition="#status = :authorized")
        except dal.ConditionFailed:
            pass  # changed meanwhile (captured, voided, expired): nothing left to advance
        warn(payment_id)
        expire(payment_id)
    if item["status"] == "requires_action" and item.get("authentication_expires_at"):
        from tahsil.payments import challenge

        shifted = clock.iso(clock.parse(item["authentication_expires_at"]) - dt.timedelta(seconds=seconds))
        try:
            dal.update(dal.payments_table(), item["pk"], "PAY", "SET authentication_expires_at = :shifted",
                       names={"#status": "status"}, vals=dal.values(shifted=shifted, waiting="requires_action"),
                       condition="#status = :waiting")
        except dal.ConditionFailed:
            pass  # the shopper came back meanwhile
        challenge.abandon(payment_id)
    return view(load_payment(p, payment_id))
