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
# execution per bucket (named after it, so starting it twice is a no-op) waits until the bucket
# ends and sweeps its items page by page with the same conditional writes. A payment captured or
# voided first is skipped (its condition fails, nothing is written); the items expire by TTL.

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
    if event["type"] == "payment_intent.created" and obj.get("expires_at"):
        return [{"kind": "payment_intent", "id": obj["id"], "action": "expire", "at": obj["expires_at"]}]
    return []


def next_deadlines(event: dict[str, Any]) -> list[dict[str, str]]:
    """What an outbox event puts on the wheel: the first of its object's deadlines only.

    The warning's own event (written by ``warn`` in the same transaction) brings the expiry, so a
    payment captured or voided before its warning never writes its expiry to the wheel.
    """
    return deadlines(event)[:1]


def execution_input(bucket: int) -> dict[str, Any]:
    """The bucket's execution input; identical from every caller, so StartExecution is idempotent."""
    return {"bucket": bucket, "due_at": clock.iso(dt.datetime.fromtimestamp(bucket, dt.UTC)), "shards": wheel_shards(),
            "shard": 0, "cursor": None, "done": False, "seen": 0, "acted": 0}


_started: set[tuple[str, int]] = set()  # (state machine, bucket) this container has started: no second call


def _start_bucket(bucket: int) -> None:
    machine = os.environ["EXPIRY_STATE_MACHINE_ARN"]
    if (machine, bucket) in _started:
        return
    client = aws.client("stepfunctions")
    try:
        client.start_execution(stateMachineArn=machine,
                               name=f"wheel-{bucket_seconds()}s-{bucket}", input=json.dumps(execution_input(bucket)))
    except client.exceptions.ExecutionAlreadyExists:
        pass  # started by an earlier deadline in this bucket (or its sweep has already run: see register)
    if len(_started) > 10_000:
        _started.clear()
    _started.add((machine, bucket))


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
        _start_bucket(bucket)
    for d in due:
        act(d["kind"], d["id"], d["action"])
    return buckets


def act(kind: str, item_id: str, action: str) -> bool:
    """Apply one deadline with its conditional write; False if there was nothing (left) to do."""
    if kind != "payment":
        from tahsil.payments import intents

        return intents.expire(item_id) if action == "expire" else False
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
    acted = 0
    if page:
        with ThreadPoolExecutor(max_workers=min(SWEEP_THREADS, len(page))) as pool:
            acted = sum(pool.map(lambda row: act(row["kind"], row["sk"].rsplit("#", 1)[0], row["action"]), page))
    if cursor is None:
        shard, cursor = shard + 1, None
    return {**state, "shard": shard, "cursor": cursor, "done": shard >= shards,
            "seen": int(state.get("seen", 0)) + len(page), "acted": int(state.get("acted", 0)) + acted}


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
    return view(load_payment(p, payment_id))
