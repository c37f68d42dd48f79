"""Scale and cost figures for ``make bench`` (scripts/bench.py runs them after its own tables).

1. Capacity: the DynamoDB write and read units of one payment (authorize + capture, with
   payment.authorized and payment.captured delivered once to one endpoint, the request logs,
   and the expiry wheel's registration), per step and per table. Units are computed from the
   items each call touches, by DynamoDB's published rules (below), on moto.
2. The raw-boto3 floor: the DynamoDB calls of one authorization, replayed with a bare boto3
   client on the same moto, against the handler's warm p50/p99 in the same run.
3. The expiry time wheel: 1,000 authorizations over 10 simulated minutes: deadlines,
   buckets, open executions (moto's list_executions), sweep pages and state transitions;
   against the one-execution-per-authorization design it replaced.
4. Listing transactions at 100 / 1,000 / 10,000 rows for one merchant: calls and latency
   of GET /v1/transactions, and what counting the history (the old ``total``) reads.
5. Cold start as built: ``layers/tahsil/Makefile`` (what ``sam build`` runs) built for this
   machine's architecture, the authorize handler imported from it by python3.13, its
   first-request set-up, and the layer's unzipped size.
6. A cost table per 1M payments per AWS component, and the scale ceilings before/after.

Capacity rules used (on-demand, us-east-1): a write is 1 WRU per started KB of the larger
of the item before and after, 2x inside TransactWriteItems (ConditionCheck too); each
global secondary index the item is in costs a write of its projection (a key change costs a
delete and a put); a read is 1 RRU per started 4 KB, half when eventually consistent, and a
Query is charged on the summed size of the items it returns.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# us-east-1 list prices (USD), December 2026
PRICE = {
    "wru": 0.625 / 1e6, "rru": 0.125 / 1e6,
    "apigw_rest": 3.50 / 1e6,
    "lambda_request": 0.20 / 1e6, "lambda_gb_s_arm": 0.0000133334,
    "sqs_request": 0.40 / 1e6,
    "sfn_transition": 25.0 / 1e6,
    "xray_trace": 5.0 / 1e6,
    "logs_gb": 0.50,
}


# ---------------------------------------------------------------- item sizes and capacity units


def attr_size(value: dict[str, Any]) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = len(v.lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(v) if isinstance(v, bytes | bytearray) else len(str(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attr_size(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + attr_size(x) for x in v)
    if kind in ("SS", "NS", "BS"):
        return sum(attr_size({kind[0]: x}) for x in v)
    return 0


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(k.encode()) + attr_size(v) for k, v in item.items()) if item else 0


@dataclass
class Capacity:
    wru: float = 0.0
    rru: float = 0.0
    by: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # "table op" -> WRU
    # "table or index: partition key with ids and times generalised" -> WRU (see shared_partition)
    partitions: dict[str, float] = field(default_factory=lambda: defaultdict(float))


class CapacityMeter:
    """Wraps botocore's _make_api_call: every DynamoDB call's WRU/RRU, from the items moto holds before and after."""

    def __init__(self) -> None:
        from botocore.client import BaseClient

        self.current = Capacity()
        self._lock = threading.Lock()
        original = BaseClient._make_api_call
        meter = self

        def metered(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if client.meta.service_model.service_name != "dynamodb":
                return original(client, operation, params)
            before = meter._items_before(operation, params)
            try:
                answer = original(client, operation, params)
            except client.exceptions.ClientError as exc:
                # a failed condition or a cancelled transaction still consumes the write units it would have
                if exc.response.get("Error", {}).get("Code") in ("ConditionalCheckFailedException",
                                                                  "TransactionCanceledException"):
                    meter._charge(operation, params, before, {})
                raise
            meter._charge(operation, params, before, answer)
            return answer

        BaseClient._make_api_call = metered  # type: ignore[method-assign]
        self._original = original

    def stop(self) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    def start(self) -> Capacity:
        with self._lock:
            self.current = Capacity()
            return self.current

    # -- moto's view of items
    @staticmethod
    def _backend() -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]

    def _lookup(self, table_name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        table = self._backend().get_table(table_name)
        hash_value = key.get(table.hash_key_attr)
        range_value = key.get(table.range_key_attr) if table.range_key_attr else None
        from moto.dynamodb.models.dynamo_type import DynamoType

        try:
            found = table.get_item(DynamoType(hash_value), DynamoType(range_value) if range_value else None)
        except Exception:  # noqa: BLE001 - a key moto rejects: the call fails on its own
            return None
        return found.to_json()["Attributes"] if found else None

    def _writes(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool, str]]:
        """(table, key, transactional, kind) of every item a write call touches."""
        out = []
        if operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                kind, body = next(iter(action.items()))
                out.append((body["TableName"], body.get("Key") or self._key_of(body["TableName"], body["Item"]), True, kind))
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            out.append((params["TableName"], params.get("Key") or self._key_of(params["TableName"], params["Item"]),
                        False, operation))
        elif operation == "BatchWriteItem":
            for table_name, requests in params["RequestItems"].items():
                for request in requests:
                    kind, body = next(iter(request.items()))
                    out.append((table_name, body.get("Key") or self._key_of(table_name, body["Item"]), False, kind))
        return out

    def _key_of(self, table_name: str, item: dict[str, Any]) -> dict[str, Any]:
        table = self._backend().get_table(table_name)
        return {a: item[a] for a in (table.hash_key_attr, table.range_key_attr) if a and a in item}

    def _items_before(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool, str, Any]]:
        return [(t, k, tx, kind, self._lookup(t, k)) for t, k, tx, kind in self._writes(operation, params)]

    def _charge(self, operation: str, params: dict[str, Any], before: list[Any], answer: dict[str, Any]) -> None:
        wru = 0.0
        rru = 0.0
        label = ""
        for table_name, key, transactional, kind, old in before:
            new = self._lookup(table_name, key)
            size = max(item_size(old), item_size(new))
            base = math.ceil(max(size, 1) / 1024) * (2 if transactional else 1)
            indexed = self._index_units(table_name, old, new)
            units = base + sum(u for _, u in indexed)
            wru += units
            short = table_name.rsplit("-", 1)[-1].removesuffix("Table")
            pk = next(iter(key.values()))
            prefix = next(iter(pk.values())).split("#")[0]
            label = f"{short} {prefix} {kind}"
            with self._lock:
                self.current.by[label] += units
                self.current.partitions[f"{short}: {generalise(next(iter(pk.values())))}"] += base
                for where, u in indexed:
                    self.current.partitions[f"{short}.{where}"] += u
        if operation == "GetItem":  # a read of an item that is not there still costs the minimum
            rru = max(1, math.ceil(item_size(answer.get("Item")) / 4096)) * (1 if params.get("ConsistentRead") else 0.5)
        elif operation in ("Query", "Scan"):
            size = sum(item_size(i) for i in answer.get("Items", []))
            rru = max(1, math.ceil(size / 4096)) * (1 if params.get("ConsistentRead") else 0.5)
        elif operation == "BatchGetItem":
            for table_name, request in params["RequestItems"].items():
                unit = 1 if request.get("ConsistentRead") else 0.5
                items = answer.get("Responses", {}).get(table_name, [])
                rru += sum(math.ceil(item_size(i) / 4096) * unit for i in items)
                rru += max(0, len(request.get("Keys", [])) - len(items)) * unit  # the keys not found: the minimum
        with self._lock:
            self.current.wru += wru
            self.current.rru += rru

    def _index_units(self, table_name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[tuple[str, int]]:
        """(index: generalised partition key, units) of every index copy the write changes."""
        table = self._backend().get_table(table_name)
        out: list[tuple[str, int]] = []
        for index in table.global_indexes:
            keys = [k["AttributeName"] for k in index.schema]
            a, b = _projected(table, keys, index.projection or {}, old), _projected(table, keys, index.projection or {}, new)
            if a is None and b is None:
                continue
            hash_attr = keys[0]
            part = generalise(next(iter((b or a)[hash_attr].values())))  # type: ignore[index]
            where = f"{index.name}: {part}"
            if a is not None and b is not None and all(old[k] == new[k] for k in keys):  # type: ignore[index]
                if a != b:
                    out.append((where, math.ceil(max(item_size(a), item_size(b)) / 1024)))
                continue
            out.append((where, sum(math.ceil(item_size(x) / 1024) for x in (a, b) if x is not None)))
        return out


_GENERAL = [
    (re.compile(r"\b(pay|evt|txn|pi|we|key|req|cus)_[A-Za-z0-9]+"), r"<\1>"),
    (re.compile(r"\bmer_[A-Za-z0-9]+"), "<merchant>"),
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z?"), "<time>"),
    (re.compile(r"[0-9a-f]{16,}"), "<hash>"),
    (re.compile(r"(?<![A-Za-z])\d{4,}"), "<n>"),
]


def generalise(key: str) -> str:
    """A partition key with its ids, hashes and time windows replaced by their kind: the keys one merchant's
    payments share read the same (``<merchant>#test#EVT``), the keys each payment has to itself show an id."""
    for pattern, kind in _GENERAL:
        key = pattern.sub(kind, key)
    return key


def shared_partition(label: str) -> bool:
    """A partition that every payment of one merchant (or of every merchant) writes to, not a key of the
    payment's own."""
    return not any(k in label for k in ("<pay>", "<evt>", "<txn>", "<hash>", "<pi>"))


PARTITION_WCU = 1000  # DynamoDB's write ceiling per partition (and per index partition), in WRU per second


def hot_partitions(capacity: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(partition, WRU per payment, payments/s at which it reaches PARTITION_WCU) for every partition that
    payments share, hottest first: the lowest ceiling is how fast one merchant can go."""
    rows = [(k, v, PARTITION_WCU / v) for k, v in capacity["total"].partitions.items() if shared_partition(k) and v > 0]
    return sorted(rows, key=lambda r: -r[1])


def _projected(table: Any, keys: list[str], projection: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an index holds of an item (None: the item is not in the index)."""
    if not item or not all(k in item for k in keys):
        return None
    if projection.get("ProjectionType", "ALL") == "ALL":
        return item
    keep = set(keys) | {table.hash_key_attr, table.range_key_attr} | set(projection.get("NonKeyAttributes", []))
    return {k: v for k, v in item.items() if k in keep}


# ---------------------------------------------------------------- 1. one payment's capacity


# Payments measured together: at the cost table's 10 payments/s, the request-log consumer's 5 s batching
# window collects 100 logs (its BatchSize), i.e. 50 payments' worth; the delivery queue has no batching window
# (latency first), so its batches are what one long poll finds.
STEADY_PAYMENTS = 50


def payment_capacity(meter: CapacityMeter, payments: int = STEADY_PAYMENTS) -> dict[str, Any]:
    """Write and read units per payment, averaged over ``payments`` payments of one merchant made back to back.

    Each payment is authorize + capture, then payment.authorized and payment.captured delivered once to one
    endpoint. The consumers then run as deployed under load: the request-log consumer takes the whole batch at
    once (template: BatchSize 100, 5 s window), the stream consumers take every record in one batch. With
    ``payments=1`` it is one payment alone, the worst case: per-minute counter items are not shared with
    any other payment.
    """
    from tahsil.console import ops
    from tests.integration.test_webhooks_pipeline import Receiver, card_number
    from tests.support.lambdas import invoke, load_event
    from tests.unit import test_webhooks as tw

    os.environ["TAHSIL_LOCAL_RUNTIME"] = "true"  # test mode may deliver to http://127.0.0.1
    merchant = ops.create_merchant("Bench Capacity", live_approved=True)
    key = merchant["keys"]["test"]["secret"]
    receiver = Receiver()
    steps: dict[str, Capacity] = defaultdict(Capacity)

    def measure(step: str, action: Any) -> Any:
        cap = meter.start()
        try:
            return action()
        finally:
            meter.start()
            into = steps[step]
            into.wru += cap.wru
            into.rru += cap.rru
            for k, v in cap.by.items():
                into.by[k] += v
            for k, v in cap.partitions.items():
                into.partitions[k] += v

    try:
        tw.create_endpoint(key, receiver.url, ["payment.authorized", "payment.captured"])
        _drain(tw)  # whatever the set-up left on the stream and the queues
        base = json.loads(load_event("payments-authorize")["body"])
        for i in range(payments):
            body = {**base, "card": {**base["card"], "number": card_number(9000 + i)}}
            event = load_event("payments-authorize", key=key, body=body, headers={"Idempotency-Key": f"bench-cap-a{i}"})
            pid = measure("authorize (API)", lambda e=event: invoke("AuthorizePaymentFunction", e).data["id"])
            capture = load_event("payments-capture", key=key, path_id=pid, headers={"Idempotency-Key": f"bench-cap-c{i}"})
            measure("capture (API)", lambda e=capture: invoke("CapturePaymentFunction", e))
        measure("request logs (consumer)", _request_logs)
        measure("expiry wheel (registration)", lambda: _expiry_timers(tw))
        measure("webhooks: fan-out + first attempts", lambda: _pipeline(tw))
        delivered = len(receiver.received)
    finally:
        receiver.stop()
    per: dict[str, Capacity] = {}
    total = Capacity()
    for step, cap in steps.items():
        share = Capacity(cap.wru / payments, cap.rru / payments)
        for k, v in cap.by.items():
            share.by[k] = v / payments
            total.by[k] += v / payments
        for k, v in cap.partitions.items():
            total.partitions[k] += v / payments
        per[step] = share
        total.wru += share.wru
        total.rru += share.rru
    return {"steps": per, "total": total, "delivered": delivered, "payments": payments}


def _pipeline(tw: Any) -> None:
    """tests/unit/test_webhooks.py's run_pipeline, skipping the fan-out when the stream holds nothing for it."""
    from tahsil_local.pollers import passes
    from tahsil_local.template import load

    pattern = load()["Resources"]["WebhookFanoutFunction"]["Properties"]["Events"]["Outbox"]["Properties"][
        "FilterCriteria"]["Filters"]
    if any(passes(pattern, r) for r in tw.stream_records()):
        tw.run_pipeline()


def _drain(tw: Any) -> None:
    _request_logs()
    _expiry_timers(tw)
    _pipeline(tw)
    from moto.dynamodb.models import dynamodb_backends

    from tahsil.store import dal
    from tests.unit.test_webhooks import stream_records

    dynamodb_backends["123456789012"]["us-east-1"].tables[dal.payments_table()].stream_shard.items.clear()
    assert not stream_records()


def _request_logs() -> None:
    """Everything on the request-log queue, handed to the consumer in batches of up to 100 (its BatchSize)."""
    import boto3

    from tests.unit.test_webhooks import invoke_raw

    sqs = boto3.client("sqs")
    queue = os.environ["REQUEST_LOG_QUEUE_URL"]
    while True:
        messages: list[dict[str, Any]] = []
        while len(messages) < 100:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            messages += got
        if not messages:
            return
        invoke_raw("RequestLogConsumerFunction", {"Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {},
             "messageAttributes": {}, "eventSource": "aws:sqs"} for m in messages]})
        for m in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def _expiry_timers(tw: Any) -> None:
    from tahsil_local.pollers import passes
    from tahsil_local.template import load

    pattern = load()["Resources"]["ExpiryTimersFunction"]["Properties"]["Events"]["Outbox"]["Properties"][
        "FilterCriteria"]["Filters"]
    records = [r for r in tw.stream_records() if passes(pattern, r)]
    if records:
        tw.invoke_raw("ExpiryTimersFunction", {"Records": records})


# ---------------------------------------------------------------- 2. the raw-boto3 floor


def floor_ratio(n: int) -> dict[str, float]:
    """The authorize handler against a bare boto3 client making the same DynamoDB calls, in this run."""
    import boto3
    from botocore.client import BaseClient

    from scripts import benchlib
    from tahsil.console import ops
    from tests.support.lambdas import handler_of

    key = ops.create_merchant("Bench Floor")["keys"]["test"]["secret"]
    client = benchlib.Client(key)
    handler = handler_of("AuthorizePaymentFunction")
    recorded: list[tuple[str, str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def record(c: Any, operation: str, params: dict[str, Any]) -> Any:
        # every AWS call of a warm authorize: its DynamoDB calls and the request log it sends to SQS
        recorded.append((c.meta.service_model.service_name, operation, json.loads(json.dumps(params, default=str))))
        return original(c, operation, params)

    def event() -> dict[str, Any]:
        return client.event("payments-authorize", body=benchlib.card_body("payments-authorize", benchlib.APPROVING_CARD),
                            idem=benchlib.new_key())

    benchlib.clear_tables()
    handler(event(), client.context("AuthorizePaymentFunction"))  # warm-up
    benchlib.clear_tables()
    BaseClient._make_api_call = record  # type: ignore[method-assign]
    try:
        handler(event(), client.context("AuthorizePaymentFunction"))
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
    ours: list[float] = []
    for _ in range(n):
        benchlib.clear_tables()
        e, ctx = event(), client.context("AuthorizePaymentFunction")
        start = time.perf_counter()
        handler(e, ctx)
        ours.append((time.perf_counter() - start) * 1000)
    session = boto3.session.Session()
    raw_clients = {service: session.client(service) for service in {service for service, _, _ in recorded}}
    raw = raw_clients["dynamodb"]
    calls = [(getattr(raw_clients[service], _snake(op)), params) for service, op, params in recorded]
    floor: list[float] = []
    for _ in range(n):
        benchlib.clear_tables()
        start = time.perf_counter()
        for fn, params in calls:
            try:
                fn(**params)
            except raw.exceptions.ConditionalCheckFailedException:
                pass  # a counter's conditional form replayed against another second: the same round trip
        floor.append((time.perf_counter() - start) * 1000)
    p50, p99 = benchlib.percentile(ours, 50), benchlib.percentile(ours, 99)
    f50, f99 = benchlib.percentile(floor, 50), benchlib.percentile(floor, 99)
    return {"p50": p50, "p99": p99, "floor_p50": f50, "floor_p99": f99, "ratio_p50": p50 / f50,
            "ratio_p99": p99 / f99, "calls": len(recorded),
            "services": ", ".join(f"{n} {service}" for service, n in sorted(
                {sv: sum(1 for x, _, _ in recorded if x == sv) for sv, _, _ in recorded}.items()))}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


# ---------------------------------------------------------------- 3. the expiry wheel


def wheel(authorizations: int = 1000, minutes: int = 10) -> dict[str, Any]:
    """register() for authorizations spread over ``minutes`` (a simulated clock), then every bucket swept."""
    import boto3

    from tahsil.kernel import clock
    from tahsil.payments import expiry

    real_now = clock.now
    start = real_now().replace(second=0, microsecond=0)
    sfn = boto3.client("stepfunctions")
    machine = os.environ["EXPIRY_STATE_MACHINE_ARN"]
    before = {e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
    buckets: set[int] = set()
    starts = 0
    from tahsil.store import aws

    client = aws.client("stepfunctions")
    original_start = client.start_execution

    def counted_start(**kwargs: Any) -> Any:  # the StartExecution calls that reach the API
        nonlocal starts
        starts += 1
        return original_start(**kwargs)

    client.start_execution = counted_start
    try:
        for i in range(authorizations):
            created = start + (minutes * 60) * i / authorizations * _second()
            clock.now = lambda created=created: created  # type: ignore[assignment]
            ttl, lead = 7 * 86400, 86400
            obj = {"id": f"pay_bench{i:06d}", "created_at": clock.iso(created),
                   "expires_at": clock.iso(created + ttl * _second())}
            assert lead
            buckets.update(expiry.register(expiry.deadlines({"type": "payment.authorized", "object": obj})))
        opened = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] not in before]
        # every bucket swept, as its execution would at its end: pages and states
        pages = 0
        far = max(buckets) + 60
        clock.now = lambda: _epoch(far)  # type: ignore[assignment]
        for bucket in sorted(buckets):
            state = expiry.execution_input(bucket)
            while not state["done"]:
                state = expiry.sweep(state)
                pages += 1
    finally:
        clock.now = real_now  # type: ignore[assignment]
        client.start_execution = original_start
    transitions = 2 * len(buckets) + 2 * pages  # Wait + Done per bucket; Sweep + MorePages per page
    return {"authorizations": authorizations, "minutes": minutes, "deadlines": 2 * authorizations,
            "buckets": len(buckets), "open_executions": len(opened), "start_calls": starts, "pages": pages,
            "transitions": transitions, "old_executions": authorizations, "old_transitions": 6 * authorizations,
            "bucket_seconds": expiry.bucket_seconds(), "shards": expiry.wheel_shards()}


def _second() -> Any:
    import datetime as dt

    return dt.timedelta(seconds=1)


def _epoch(seconds: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC)


# ---------------------------------------------------------------- 4. listings


def listings(sizes: tuple[int, ...] = (100, 1000, 10000), runs: int = 20) -> list[dict[str, Any]]:
    from botocore.client import BaseClient

    from scripts import benchlib
    from tahsil.console import ops
    from tahsil.kernel import clock
    from tahsil.kernel.principal import Principal
    from tahsil.payments import payments
    from tahsil.store import dal
    from tests.support.lambdas import handler_of

    out = []
    calls: list[str] = []
    original = BaseClient._make_api_call

    def counted(c: Any, operation: str, params: dict[str, Any]) -> Any:
        if c.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(c, operation, params)

    for size in sizes:
        benchlib.clear_tables()
        merchant = ops.create_merchant(f"Bench List {size}")
        key = merchant["keys"]["test"]["secret"]
        p = Principal(merchant_id=merchant["id"] if "id" in merchant else merchant["merchant_id"], mode="test",
                      key_id="", key_type="secret")
        now = clock.now()
        rows, counters = [], [{"pk": f"CNT#{p.owner}#TXN", "sk": f"S{s:02d}", "all": 0, "authorized": 0,
                                                  "ix_authorized": 0}
                              for s in range(payments.TXN_COUNTER_SHARDS)]
        import zlib

        for i in range(size):
            txn_id = f"txn_bench{size:05d}{i:06d}"
            moment = now - (size - i) * _second() / 100
            rows.append({"pk": payments.txn_partition(p.owner), "sk": txn_id, "id": txn_id,  # ids sort by time
                         "gsi1pk": payments.txn_status_partition(p.owner, "authorized"), "gsi1sk": txn_id,
                         "merchant_id": p.merchant_id, "mode": "test", "payment_id": f"pay_bench{i:06d}",
                         "type": "authorization", "status": "authorized", "amount": 1000, "currency": "USD",
                         "card_brand": "visa", "card_last4": "4242", "auth_code": "123456", "response_code": "00",
                         "response_message": "Approved", "reason": None, "created_at": clock.iso(moment)})
            shard = counters[zlib.crc32(txn_id.encode()) % payments.TXN_COUNTER_SHARDS]
            shard["all"] += 1
            shard["authorized"] += 1  # events/transactions-list.json lists status=authorized
            shard["ix_authorized"] += 1  # as the write path counts a row that carries its status key
        failed = dal.batch_put(dal.payments_table(), rows + counters)
        assert not failed and payments.transaction_total(p) == size, (len(failed), payments.transaction_total(p))
        client = benchlib.Client(key)
        handler = handler_of("ListTransactionsFunction")
        samples = []
        handler(client.event("transactions-list"), client.context("ListTransactionsFunction"))  # warm
        for _ in range(runs):
            calls.clear()
            BaseClient._make_api_call = counted  # type: ignore[method-assign]
            try:
                start = time.perf_counter()
                answer = handler(client.event("transactions-list"), client.context("ListTransactionsFunction"))
                samples.append((time.perf_counter() - start) * 1000)
            finally:
                BaseClient._make_api_call = original  # type: ignore[method-assign]
        total = json.loads(answer["body"])["data"]["total"]
        assert total == size, (total, size)
        pages: list[int] = []
        ddb = dal._ddb()
        args: dict[str, Any] = {"TableName": dal.payments_table(),
                                "KeyConditionExpression": "pk = :o", "Select": "COUNT",
                                "ExpressionAttributeValues": {":o": {"S": payments.txn_partition(p.owner)}}}
        start = time.perf_counter()
        while True:
            page = ddb.query(**args)
            pages.append(page["Count"])
            if "LastEvaluatedKey" not in page:
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        count_ms = (time.perf_counter() - start) * 1000
        out.append({"size": size, "calls": len([c for c in calls if c in ("Query", "GetItem", "BatchGetItem")]),
                    "all_calls": len(calls), "p50": benchlib.percentile(samples, 50), "p99": benchlib.percentile(samples, 99),
                    "count_pages": len(pages), "count_ms": count_ms,
                    "count_rru": math.ceil(sum(item_size(_sample_row(rows)) for _ in range(size)) / 4096) / 2})
    return out


def overview_reads(sizes: tuple[int, ...] = (100, 10_000), runs: int = 20) -> list[dict[str, Any]]:
    """GET /v1/overview (the last 24 h) as one merchant's request logs grow: DynamoDB calls and latency.

    The records go through the request-log consumer's own write path (``requestlog.store``: log
    row + counter ADDs in one transaction), spread over the window; ``old_*`` is what the scan
    it replaced had to read: every log row of the window, in Query pages of 1,000.
    """
    import datetime as dt

    from botocore.client import BaseClient

    from scripts import benchlib
    from tahsil.api import requestlog
    from tahsil.console import ops
    from tahsil.kernel import clock
    from tahsil.store import dal
    from tests.support.lambdas import handler_of

    out = []
    calls: list[str] = []
    original = BaseClient._make_api_call

    def counted(c: Any, operation: str, params: dict[str, Any]) -> Any:
        if c.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(c, operation, params)

    for size in sizes:
        benchlib.clear_tables()
        merchant = ops.create_merchant(f"Bench Overview {size}")
        key = merchant["keys"]["test"]["secret"]
        merchant_id = merchant.get("merchant_id") or merchant["id"]
        now = clock.now()
        since = now - dt.timedelta(hours=24)
        records = [requestlog.Record(
            request_id=f"req_bench{size:05d}{i:06d}", received_at=(now - (size - i) * dt.timedelta(hours=23) / size).isoformat(),
            merchant_id=merchant_id, mode="test", key_id="key_bench", method="POST", path="/v1/payments",
            route="/v1/payments", status=(200, 201, 402, 404, 500)[i % 5], latency_ms=20 + i % 400, rate_limit={},
            signature={"outcome": "not_required"}, body_sha256="0" * 64, api_version="2026-06-14.basra")
            for i in range(size)]
        start = time.perf_counter()
        sample = records[:100]
        for first in range(0, len(sample), 10):  # the consumer's own path, timed on the first 100
            assert not requestlog.store(sample[first:first + 10])
        consume_ms = (time.perf_counter() - start) * 1000 / len(sample)
        _seed_counted_logs(records[100:])
        client = benchlib.Client(key)
        handler = handler_of("GetOverviewFunction")
        event = client.event("overview-get")
        window = {"from": clock.iso(since), "to": clock.iso(now)}
        event["queryStringParameters"] = window
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in window.items()}
        samples = []
        answer = handler(event, client.context("GetOverviewFunction"))  # warm
        for _ in range(runs):
            calls.clear()
            BaseClient._make_api_call = counted  # type: ignore[method-assign]
            try:
                start = time.perf_counter()
                answer = handler(event, client.context("GetOverviewFunction"))
                samples.append((time.perf_counter() - start) * 1000)
            finally:
                BaseClient._make_api_call = original  # type: ignore[method-assign]
        data = json.loads(answer["body"])["data"]
        assert data["requests"]["total"] == size, (data["requests"]["total"], size)
        pages = 0
        start = time.perf_counter()
        last: str | None = None
        while True:
            _, last = dal.query_page(dal.request_logs_table(), f"LOG#{merchant_id}#test", sk_from=clock.sortable(since),
                                     sk_to=clock.sortable(now) + "~", start_sk=last, page_size=1_000)
            pages += 1
            if last is None:
                break
        out.append({"size": size, "calls": len(calls), "queries": data["limits"]["counter_queries"],
                    "items": data["limits"]["counter_items_read"], "p50": benchlib.percentile(samples, 50),
                    "p99": benchlib.percentile(samples, 99), "old_pages": pages,
                    "old_ms": (time.perf_counter() - start) * 1000, "consume_ms": consume_ms})
    return out


def _seed_counted_logs(records: list[Any]) -> None:
    """Rows and counters as the consumer leaves them, written in bulk: moto copies every table
    on each TransactWriteItems, which makes 10,000 consumer transactions quadratic (and gigabytes)."""
    import datetime as dt

    from tahsil.api import requestlog
    from tahsil.store import counters, dal

    table = dal.request_logs_table()
    assert not dal.batch_put(table, [requestlog.item_of(r) for r in records])
    sums: dict[tuple[str, str, str], dict[str, int]] = {}
    highest: dict[tuple[str, str, str], int] = {}
    for r in records:
        moment = dt.datetime.fromisoformat(r.received_at.replace("Z", "+00:00"))
        for key in ((requestlog.scope(r.merchant_id, r.mode), counters.MINUTE, counters.minute_key(moment)),
                    (requestlog.scope(r.merchant_id, r.mode), counters.HOUR, counters.hour_key(moment))):
            target = sums.setdefault(key, {})
            for name, value in requestlog.counts_of(r).items():
                target[name] = target.get(name, 0) + value
            highest[key] = max(highest.get(key, 0), r.latency_ms)
    ttl = requestlog.item_of(records[-1])["ttl"] if records else 0
    client = dal._ddb()
    for (scope, res, sk), counts in sums.items():
        action = counters.add_action(table, scope, res, sk, counts, ttl)["Update"]
        client.update_item(**action)
        try:
            dal.update(table, counters.partition(scope, res), sk, "SET amx = :v",
                       vals=dal.values(v=highest[(scope, res, sk)]), condition="attribute_not_exists(amx) OR amx < :v")
        except dal.ConditionFailed:
            pass  # the consumer's own sample set a larger one


def _sample_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from tahsil.store.codec import dump

    return dump(rows[0])


# ---------------------------------------------------------------- 5. cold start as built


def python313() -> str | None:
    candidates = [os.environ.get("TAHSIL_PY313", "")]
    try:
        prefix = subprocess.run(["pyenv", "prefix", "3.13.0"], capture_output=True, text=True, check=False).stdout.strip()
        candidates.append(f"{prefix}/bin/python3.13" if prefix else "")
    except OSError:
        pass
    candidates.append(shutil.which("python3.13") or "")
    return next((c for c in candidates if c and Path(c).exists()), None)


FIRST_REQUEST_PROBE = """
import importlib.util, json, sys, time
path, events_file = sys.argv[1:3]
first_event, second_event = json.loads(open(events_file).read())
start, cpu0 = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("app", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
handler = module.handler
imported, cpu1 = time.perf_counter(), time.process_time()

class Context:  # what the Lambda runtime passes
    function_name = "AuthorizePaymentFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:AuthorizePaymentFunction"
    def __init__(self, request_id):
        self.aws_request_id, self.deadline = request_id, time.monotonic() + 15
    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)

def invoke(event):
    wall, cpu = time.perf_counter(), time.process_time()
    answer = handler(event, Context(event["requestContext"]["requestId"]))
    if answer.get("statusCode") not in (200, 201):
        sys.exit(f"probe: authorize answered {answer.get('statusCode')}: {answer.get('body')}")
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000

first_ms, first_cpu = invoke(first_event)
second_ms, second_cpu = invoke(second_event)
print("PROBE", (imported - start) * 1000, first_ms - second_ms, (cpu1 - cpu0) * 1000, first_cpu - second_cpu,
      first_cpu, second_cpu)
"""


def cold_server(requests: int) -> None:
    """``bench_scale.py cold-server N``: a moto server on loopback with the template's resources and one
    merchant, for the cold start probe. Prints one JSON line (the authorize function's environment,
    resolved as deployed, the endpoint, and N authorize events, each with a fresh card and
    Idempotency-Key), then serves until its stdin closes."""
    from scripts import benchlib
    from tahsil_local import aws as local_aws
    from tahsil_local import template

    server = local_aws.MotoServer()
    url = server.start()
    try:
        local_aws.use_endpoint(url)
        doc = template.load()
        refs = local_aws.create_resources(doc)
        fn = next(f for f in template.functions(doc) if f.logical_id == "AuthorizePaymentFunction")
        env = {name: local_aws.resolve(value, refs) for name, value in fn.environment.items()}
        for name in list(env):  # the probe's requests come faster than a merchant's default limits
            if name.startswith("RATE_LIMIT_") and name.endswith(("_PER_SECOND", "_PER_HOUR")):
                env[name] = str(10**9)
        os.environ.update({k: v for k, v in env.items() if not k.startswith("POWERTOOLS_")})
        benchlib._reset_caches()
        from tahsil.console import ops

        key = ops.create_merchant("Bench Cold Start")["keys"]["test"]["secret"]
        events = [benchlib.load_event("payments-authorize", key=key, headers={"Idempotency-Key": f"cold-{i}-{time.time_ns()}"},
                                   body=benchlib.card_body("payments-authorize", benchlib.fresh_card(7 * 10**6 + i)))
                  for i in range(requests)]
        sys.stdout.write(json.dumps({"endpoint": url, "env": env, "events": events}) + "\n")
        sys.stdout.flush()
        sys.stdin.read()
    finally:
        server.stop()


# The floor handler: json, a router, a pydantic model and cryptography, imported from the same layer in
# the same environment, interleaved with the probe's runs. This machine's speed drifts by +-8 % from one minute to
# the next; the ratio to the floor does not, so both are reported.
FLOOR_PROBE = """
import time
start = time.process_time()
import json
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel

class Card(BaseModel):
    number: str
    exp_month: int
    exp_year: int

app = APIGatewayRestResolver()
print("FLOOR", (time.process_time() - start) * 1000)
"""


def cold_start(runs: int) -> dict[str, Any] | None:
    """Import the authorize handler from the built layer in a fresh python3.13, then answer two authorize
    requests against a moto server (a new card and Idempotency-Key each). The first request's set-up is
    the first request's CPU time minus the second's: everything a cold container does once (botocore, the
    clients, each operation's first call, the pepper and the first KMS data key, pydantic's validators...).
    AWS calls go to moto over http on loopback: the TLS handshakes of a real first request are not in it."""
    py = python313()
    if py is None:
        return None
    cache = ROOT / ".bench"
    venv = cache / "py313"
    if not (venv / "bin" / "python").exists():
        # the Lambda runtime's own boto3 stands in for the one python3.13 on Lambda has
        subprocess.run([py, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "boto3"], check=True)
    layer = cache / "layer"
    machine = os.uname().machine
    platform_tag = "manylinux2014_aarch64" if machine in ("aarch64", "arm64") else "manylinux2014_x86_64"
    shutil.rmtree(layer, ignore_errors=True)
    subprocess.run(["make", "-s", "-C", str(ROOT / "layers" / "tahsil"), "build-TahsilLayer", f"ARTIFACTS_DIR={layer}",
                    f"PLATFORM={platform_tag}", f"PYTHON={py}"], check=True, capture_output=True)
    built = ROOT / ".aws-sam" / "build" / "AuthorizePaymentFunction" / "app.py"
    app = built if built.exists() else ROOT / "functions" / "payments" / "authorize" / "app.py"
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    server = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "bench_scale.py"), "cold-server", str(2 * runs)],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise SystemExit("bench: the cold start probe's moto server did not start")
        given = json.loads(line)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
        env.update(given["env"])
        # as in Lambda: the role's credentials in the environment (else botocore would look for them on the network)
        env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": given["endpoint"],
                    "AWS_LAMBDA_FUNCTION_NAME": "AuthorizePaymentFunction", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
                    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                    "PYTHONPATH": f"{layer / 'python'}:{site}", "PYTHONDONTWRITEBYTECODE": "1"})
        imports, setups, import_cpu, setup_cpu, first_cpu, second_cpu, floor_cpu = [], [], [], [], [], [], []
        with tempfile.TemporaryDirectory() as cwd:  # like /var/task: nothing else on the path
            for i in range(runs):
                floor = subprocess.run([py, "-s", "-c", FLOOR_PROBE], cwd=cwd, env=env, capture_output=True, text=True,
                                       check=False)
                floor_cpu += [float(ln.split()[1]) for ln in floor.stdout.splitlines() if ln.startswith("FLOOR ")]
                events = Path(cwd) / "events.json"
                events.write_text(json.dumps(given["events"][2 * i:2 * i + 2]))
                out = subprocess.run([py, "-s", "-c", FIRST_REQUEST_PROBE, str(app), str(events)], cwd=cwd, env=env,
                                     capture_output=True, text=True, check=False)
                result = [ln for ln in out.stdout.splitlines() if ln.startswith("PROBE ")]
                if out.returncode != 0 or not result:
                    raise SystemExit(f"bench: cold start probe failed:\n{out.stderr}\n{out.stdout[-2000:]}")
                a, b, c, d, e, f = (float(v) for v in result[-1].split()[1:])
                imports.append(a)
                setups.append(b)
                import_cpu.append(c)
                setup_cpu.append(d)
                first_cpu.append(e)
                second_cpu.append(f)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
    size = sum(f.stat().st_size for f in (layer / "python").rglob("*") if f.is_file())
    arm = ROOT / ".aws-sam" / "build" / "TahsilLayer"
    arm_size = sum(f.stat().st_size for f in arm.rglob("*") if f.is_file()) if arm.exists() else None
    return {"python": py, "artifact": str(app.relative_to(ROOT)), "import_ms": statistics.median(imports),
            "import_runs": imports, "setup_ms": statistics.median(setups), "setup_runs": setups,
            "import_cpu_ms": statistics.median(import_cpu), "setup_cpu_ms": statistics.median(setup_cpu),
            "import_cpu_runs": import_cpu, "setup_cpu_runs": setup_cpu,
            "first_cpu_ms": statistics.median(first_cpu), "second_cpu_ms": statistics.median(second_cpu),
            "floor_cpu_ms": statistics.median(floor_cpu) if floor_cpu else None,
            "layer_bytes": size, "arm_layer_bytes": arm_size}


# ---------------------------------------------------------------- 6. cost per 1M payments


def wheel_month(rate_per_s: float, bucket_s: int, shards: int, page: int) -> tuple[float, float]:
    """(buckets, state transitions) a month for steady traffic: every bucket holds 2 deadlines per authorization
    made one horizon earlier; each shard of a bucket is at least one page."""
    buckets = 30 * 86400 / bucket_s
    per_shard = 2 * rate_per_s * bucket_s / shards
    pages = shards * max(1, math.ceil(per_shard / page))
    return buckets, buckets * (2 + 2 * pages)


# The cost model's assumptions (what moto cannot measure), each stated where it is used:
API_BILLED_MS = 50        # authorize/capture: 4-5 sequential AWS calls at ~8 ms in-region, plus ~10 ms of own work
CONSUMER_BILLED_MS = 30   # a stream or queue consumer's invocation: a few DynamoDB calls
RECEIVER_MS = 150         # a merchant's webhook endpoint answers in 150 ms (the delivery waits for it)
STREAM_POLLS_PER_S = 4    # Lambda polls each DynamoDB stream shard about 4 times a second
STREAM_SHARDS = 4         # shards of the payments table's stream at this rate (one per partition)
LOG_BYTES = 600           # CloudWatch Logs ingested per invocation: an authorize prints 272 B of EMF metrics
                          # (measured, INFO level), and Lambda adds START/END/REPORT lines of ~320 B


def _memory_gb(doc: dict[str, Any], function: str) -> float:
    props = doc["Resources"][function]["Properties"]
    return float(props.get("MemorySize") or doc["Globals"]["Function"]["MemorySize"]) / 1024


def _batch_size(doc: dict[str, Any], function: str) -> int:
    events = doc["Resources"][function]["Properties"]["Events"]
    return int(next(iter(events.values()))["Properties"].get("BatchSize", 10))


def _batching_window(doc: dict[str, Any], function: str) -> float:
    events = doc["Resources"][function]["Properties"]["Events"]
    return float(next(iter(events.values()))["Properties"].get("MaximumBatchingWindowInSeconds", 0))


def cost_table(capacity: dict[str, Any], wheel_figures: dict[str, Any], rate_per_s: float,
               sample_rate: float) -> tuple[list[tuple[str, float, str]], float]:
    """USD per 1M payments at ``rate_per_s`` sustained: measured units x list prices; Lambda and SQS from the
    template's memory sizes and batch sizes and the assumptions above."""
    from tahsil.payments import expiry
    from tahsil_local.template import load

    doc = load()
    total = capacity["total"]
    per_million = 1e6
    payments_per_month = rate_per_s * 86400 * 30
    buckets, transitions = wheel_month(rate_per_s, expiry.bucket_seconds(), expiry.wheel_shards(), expiry.sweep_page_size())
    sweeps = (transitions / 2 - buckets) / payments_per_month
    # Records per invocation: a stream consumer gets what one poll of a shard finds (capped by its BatchSize);
    # the request-log consumer what its batching window collects; the delivery queue's pollers hand over what
    # is waiting (at this rate a couple of messages).
    def per_stream_invocation(records_per_s: float, function: str) -> float:
        # one shard's records over the batching window (or one poll, without a window), capped by BatchSize
        gathered = records_per_s / STREAM_SHARDS * max(_batching_window(doc, function), 1 / STREAM_POLLS_PER_S)
        return min(max(1.0, gathered), float(_batch_size(doc, function)))

    fanout = 2 / per_stream_invocation(2 * rate_per_s, "WebhookFanoutFunction")
    timers = 1 / per_stream_invocation(rate_per_s, "ExpiryTimersFunction")
    logs = 2 / min(2 * rate_per_s * _batching_window(doc, "RequestLogConsumerFunction"),
                   _batch_size(doc, "RequestLogConsumerFunction"))
    deliver_batch = min(float(_batch_size(doc, "WebhookDeliverFunction")),
                        max(1.0, 2 * rate_per_s * _batching_window(doc, "WebhookDeliverFunction")))
    deliver = 2 / deliver_batch
    invocations = 2 + fanout + timers + logs + deliver + sweeps
    gb_s = (2 * _memory_gb(doc, "AuthorizePaymentFunction") * API_BILLED_MS
            + fanout * _memory_gb(doc, "WebhookFanoutFunction") * CONSUMER_BILLED_MS
            + timers * _memory_gb(doc, "ExpiryTimersFunction") * CONSUMER_BILLED_MS
            + logs * _memory_gb(doc, "RequestLogConsumerFunction") * CONSUMER_BILLED_MS * 5
            + deliver * _memory_gb(doc, "WebhookDeliverFunction") * (CONSUMER_BILLED_MS + RECEIVER_MS)  # side by side
            + sweeps * _memory_gb(doc, "ExpiryFunction") * CONSUMER_BILLED_MS * 10) / 1000
    # SQS: each API call sends its request log; each fan-out invocation one SendMessageBatch; Lambda's pollers
    # make one ReceiveMessage and one DeleteMessageBatch per batch they hand over (idle polls aside)
    sqs_requests = 2 + fanout + 2 * (logs + deliver)
    low_buckets, low_transitions = wheel_month(1.0, expiry.bucket_seconds(), expiry.wheel_shards(),
                                               expiry.sweep_page_size())
    rows = [
        ("DynamoDB writes", total.wru * per_million * PRICE["wru"], f"{total.wru:.1f} WRU per payment (measured)"),
        ("DynamoDB reads", total.rru * per_million * PRICE["rru"], f"{total.rru:.1f} RRU per payment (measured)"),
        ("API Gateway (REST)", 2 * per_million * PRICE["apigw_rest"], "2 requests per payment"),
        ("Lambda", invocations * per_million * PRICE["lambda_request"] + gb_s * per_million * PRICE["lambda_gb_s_arm"],
         f"{invocations:.2f} invocations, {gb_s * 1000:.0f} GB-ms (template memory sizes, arm64; API {API_BILLED_MS} ms "
         f"billed, consumers {CONSUMER_BILLED_MS} ms, receivers answering in {RECEIVER_MS} ms)"),
        ("SQS", sqs_requests * per_million * PRICE["sqs_request"], f"{sqs_requests:.1f} requests: request logs, "
         "fan-out batches, pollers' receives and deletes"),
        ("Step Functions", transitions * PRICE["sfn_transition"] / payments_per_month * per_million,
         f"the wheel: {buckets:,.0f} buckets, {transitions:,.0f} transitions a month (${transitions * 25e-6:.2f}), "
         f"the same for any volume up to {expiry.sweep_page_size() * expiry.wheel_shards() / 2 / expiry.bucket_seconds():.1f}"
         f" payments/s; at 1 payment/s it is ${low_transitions * 25e-6 / (86400 * 30) * 1e6:.2f} per 1M"),
        ("X-Ray", 2 * sample_rate * per_million * PRICE["xray_trace"], f"{sample_rate:.0%} of requests traced"),
        ("CloudWatch Logs", invocations * LOG_BYTES / 1e9 * per_million * PRICE["logs_gb"],
         f"~{LOG_BYTES} bytes ingested per invocation"),
    ]
    return rows, sum(r[1] for r in rows)


# ---------------------------------------------------------------- report


def capacity_section(capacity: dict[str, Any], lines: list[str], failures: list[str],
                     alone: dict[str, Any] | None = None) -> None:
    """The markdown of section 1 (one payment's capacity), appended to ``lines``. ``capacity`` is the steady
    state (payments measured together, the target's basis); ``alone`` one payment by itself, for comparison."""
    total = capacity["total"]
    lines += ["### One payment's DynamoDB capacity",
              "", "authorize + capture + payment.authorized and payment.captured delivered once to one endpoint, the "
              "request logs and the expiry wheel's registration. Per payment, averaged over "
              f"{capacity['payments']} payments of one merchant whose consumers run in batches as deployed "
              f"({capacity['delivered']} deliveries received)" + (", and for one payment alone (its per-minute "
              "counters shared with nothing)" if alone else "") + ":",
              "", "| step | WRU | RRU |" + (" WRU alone | RRU alone |" if alone else ""),
              "|---|---:|---:|" + ("---:|---:|" if alone else "")]
    for step, cap in capacity["steps"].items():
        extra = f" {alone['steps'][step].wru:.1f} | {alone['steps'][step].rru:.1f} |" if alone else ""
        lines.append(f"| {step} | {cap.wru:.1f} | {cap.rru:.1f} |{extra}")
    extra = f" **{alone['total'].wru:.1f}** | **{alone['total'].rru:.1f}** |" if alone else ""
    lines.append(f"| **total** | **{total.wru:.1f}** | **{total.rru:.1f}** |{extra}")
    lines += ["", "WRU per payment by table, key prefix and operation: " + ", ".join(
        f"{k} {v:.1f}" for k, v in sorted(total.by.items(), key=lambda kv: -kv[1]) if v >= 0.05)]
    if total.wru > 35:
        failures.append(f"one payment writes {total.wru:.1f} WRU (target <= 35)")
    hot = hot_partitions(capacity)
    lines += ["", f"Partitions that payments share (a partition takes {PARTITION_WCU:,} WRU/s; `<merchant>` is one "
              "merchant's, `WHEEL#<n>#0` every merchant's; time windows and ids generalised):", "",
              "| partition (table or table.index: key) | WRU per payment | payments/s at its ceiling |",
              "|---|---:|---:|"]
    lines += [f"| `{k}` | {v:.2f} | {c:,.0f} |" for k, v, c in hot]
    merchant = [c for k, _, c in hot if "<merchant>" in k]
    if merchant and min(merchant) < 100:
        failures.append(f"one merchant's hottest partition caps it at {min(merchant):.0f} payments/s (target > 100)")


def capacity_report() -> tuple[str, list[str]]:
    """Section 1 alone (``bench_scale.py capacity``): what a change to the write path needs re-measured."""
    from scripts import benchlib

    lines: list[str] = []
    failures: list[str] = []
    meter = CapacityMeter()
    mock = start_aws()
    try:
        alone = payment_capacity(meter, payments=1)
        capacity_section(payment_capacity(meter), lines, failures, alone)
    finally:
        benchlib._reset_caches()
        mock.stop()
    return "\n".join(lines), failures


def report(n: int, import_runs: int) -> tuple[str, list[str]]:
    """Run every measurement (in its own moto account) and return the markdown and the failed targets."""
    from scripts import benchlib

    lines: list[str] = []
    failures: list[str] = []
    meter = CapacityMeter()
    mock = start_aws()
    try:
        alone = payment_capacity(meter, payments=1)
        capacity = payment_capacity(meter)
        ratio = floor_ratio(n)
        wheel_figures = wheel()
        lists = listings()
        overviews = overview_reads()
    finally:
        benchlib._reset_caches()
        mock.stop()
    cold = cold_start(import_runs)

    capacity_section(capacity, lines, failures, alone)

    lines += ["", "### Authorize against a raw-boto3 floor (same moto, same run)", "",
              f"The floor replays the {ratio['calls']} AWS calls a warm authorization makes ({ratio['services']}), "
              "one after the other, with bare boto3 clients.",
              "", "| | p50 ms | p99 ms |", "|---|---:|---:|",
              f"| authorize handler | {ratio['p50']:.2f} | {ratio['p99']:.2f} |",
              f"| raw boto3, same calls | {ratio['floor_p50']:.2f} | {ratio['floor_p99']:.2f} |",
              f"| ratio | {ratio['ratio_p50']:.2f}x | {ratio['ratio_p99']:.2f}x |"]
    if ratio["ratio_p50"] > 1.3:
        failures.append(f"authorize p50 is {ratio['ratio_p50']:.2f}x the raw-boto3 floor (target <= 1.3x)")

    w = wheel_figures
    lines += ["", f"### Expiry timers: {w['authorizations']:,} authorizations over {w['minutes']} simulated minutes", "",
              "| | one execution per authorization (before) | time wheel (now) |", "|---|---:|---:|",
              f"| open executions | {w['old_executions']:,} (for 7 days) | {w['open_executions']:,} "
              f"({w['buckets']} buckets of {w['bucket_seconds']} s) |",
              f"| StartExecution calls | {w['old_executions']:,} | {w['start_calls']:,} (one container; idempotent by name "
              "across containers) |",
              f"| state transitions | {w['old_transitions']:,} | {w['transitions']:,} ({w['pages']} sweep pages, "
              f"{w['shards']} shard(s) per bucket) |",
              f"| transitions per authorization | 6 | {w['transitions'] / w['authorizations']:.2f} |"]

    lines += ["", "### GET /v1/transactions as one merchant's history grows", "",
              "| transactions | DynamoDB calls | p50 ms | p99 ms | the old total: COUNT pages | COUNT ms |",
              "|---:|---:|---:|---:|---:|---:|"]
    for row in lists:
        lines.append(f"| {row['size']:,} | {row['all_calls']} | {row['p50']:.2f} | {row['p99']:.2f} | "
                     f"{row['count_pages']} | {row['count_ms']:.1f} |")

    lines += overview_lines(overviews)

    if cold:
        lines += ["", "### Cold start as built (layers/tahsil/Makefile, python3.13)", "",
                  f"`{cold['artifact']}` imported by `{cold['python']}` with the layer built for this machine by the "
                  "Makefile sam build runs (same steps, host wheels); a fresh interpreter per run, no bytecode written.",
                  "Then two authorize requests against a moto server on loopback (a new card and Idempotency-Key "
                  "each): the set-up is the first request's CPU minus the second's (botocore, the session and four "
                  "clients, each operation's first call, the pepper and the first KMS data key; no TLS, moto speaks "
                  "http).",
                  "", "| | median CPU ms | median wall ms | CPU runs |", "|---|---:|---:|---|",
                  f"| import the authorize handler | {cold['import_cpu_ms']:.0f} | {cold['import_ms']:.0f} | "
                  + ", ".join(f"{v:.0f}" for v in cold["import_cpu_runs"]) + " |",
                  f"| first request set-up (first request minus the second) | {cold['setup_cpu_ms']:.0f} | "
                  f"{cold['setup_ms']:.0f} | " + ", ".join(f"{v:.0f}" for v in cold["setup_cpu_runs"]) + " |",
                  f"| a warm request (the second), for scale | {cold['second_cpu_ms']:.0f} | | |",
                  *([f"| the floor handler (json, a router, a pydantic model, cryptography), interleaved | "
                     f"{cold['floor_cpu_ms']:.0f} | | authorize's import is {cold['import_cpu_ms'] / cold['floor_cpu_ms']:.2f}x "
                     "it |"] if cold.get("floor_cpu_ms") else []),
                  "", "The targets are checked on CPU time: on a shared machine the wall time mostly measures the "
                  "queue for a core (see the load average), which a Lambda's own vCPU does not have.",
                  "", f"Layer unzipped: {cold['layer_bytes'] / 1e6:.1f} MB built for this machine"
                  + (f", {cold['arm_layer_bytes'] / 1e6:.1f} MB as sam build made it for arm64 (.aws-sam/build)"
                     if cold["arm_layer_bytes"] else "") + "."]
        if cold["import_cpu_ms"] > 150:
            failures.append(f"authorize imports in {cold['import_cpu_ms']:.0f} ms of CPU from the built layer "
                            "(target <= 150 ms)")
        if cold["setup_cpu_ms"] > 100:
            failures.append(f"the first request's set-up takes {cold['setup_cpu_ms']:.0f} ms of CPU (target <= 100 ms)")
        if max(cold["layer_bytes"], cold["arm_layer_bytes"] or 0) > 30e6:
            failures.append("the layer is over 30 MB unzipped")
    else:
        lines += ["", "Cold start as built: skipped (no python3.13 found; set TAHSIL_PY313)."]

    rate, sampled = 10.0, 0.05
    rows, cost = cost_table(capacity, wheel_figures, rate, sampled)
    lines += ["", f"### Cost per 1M payments (us-east-1 list prices; {rate:g} payments/s sustained, "
              f"{sampled:.0%} traced)", "", "| component | USD | basis |", "|---|---:|---|"]
    lines += [f"| {name} | {usd:.2f} | {basis} |" for name, usd, basis in rows]
    lines.append(f"| **total** | **{cost:.2f}** | |")
    sfn = next(usd for name, usd, _ in rows if name == "Step Functions")
    if cost > 35:
        failures.append(f"a million payments cost ${cost:.2f} (target <= $35)")
    if sfn > 1:
        failures.append(f"Step Functions costs ${sfn:.2f} per 1M payments (target <= $1)")
    bucket_s = w["bucket_seconds"]
    merchant_ceiling = [c for k, _, c in hot_partitions(capacity) if "<merchant>" in k]
    lines += ["", "### Scale ceilings", "", "| | before | now |", "|---|---|---|",
              "| open Standard executions (1,000,000 per account and region) | one per authorization for 7 days: "
              "1.65 authorizations/s sustained | one per bucket in the horizon: "
              f"{7 * 86400 // bucket_s:,} at most, whatever the traffic |",
              "| StartExecution (300/s refill) | one per authorization and intent | at most one per bucket per "
              "registering container; deadlines are BatchWriteItem rows |",
              "| one bucket's registrations | - | about 1,000 writes/s per shard partition x "
              f"{w['shards']} shard(s) (ExpiryWheelShards) |",
              "| a bucket's sweep | - | pages of 500 deadlines, 8 at a time each: thousands a minute per bucket, "
              "buckets in parallel |",
              "| transaction total of one merchant | COUNT over the whole history per call | "
              "one query of 8 counter shards, whatever the history; conflicts spread 8 ways |",
              "| one merchant's hottest partition (1,000 WRU/s each) | the events' by_owner partition, ~83 "
              f"payments/s | {min(merchant_ceiling) if merchant_ceiling else 0:,.0f} payments/s "
              "(table in section 1) |"]
    return "\n".join(lines), failures


def overview_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "### GET /v1/overview (24 h window) as one merchant's request logs grow", "",
             "| request logs | DynamoDB calls | counter Queries | counter items | p50 ms | p99 ms | "
             "the old scan: Query pages | its read ms | consumer ms per record |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['size']:,} | {row['calls']} | {row['queries']} | {row['items']} | {row['p50']:.2f} | "
                     f"{row['p99']:.2f} | {row['old_pages']} | {row['old_ms']:.1f} | {row['consume_ms']:.2f} |")
    return lines


def start_aws() -> Any:
    """As tests/conftest.py's aws_env: every resource of template.yaml (state machines too), every function's
    environment; rate limits out of reach (their counters still run)."""
    from moto import mock_aws

    from scripts import benchlib
    from tahsil_local import aws as local_aws
    from tahsil_local import pollers, template

    os.environ.update(local_aws.FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    mock = mock_aws()
    mock.start()
    doc = template.load()
    refs = local_aws.create_resources(doc)
    pollers.create_state_machines(doc, refs, ROOT)
    for fn in template.functions(doc):
        for name, value in fn.environment.items():
            if not name.startswith("POWERTOOLS_"):
                os.environ[name] = local_aws.resolve(value, refs)
    for name in list(os.environ):
        if name.startswith("RATE_LIMIT_") and name.endswith(("_PER_SECOND", "_PER_HOUR")):
            os.environ[name] = str(10**9)
    benchlib._reset_caches()
    return mock


if __name__ == "__main__":  # the scale report alone: .venv/bin/python scripts/bench_scale.py [floor runs | capacity]
    import contextlib
    import io
    import warnings

    sys.path.insert(0, str(ROOT))
    from scripts import benchlib  # noqa: F401 - sets the bench environment (tracing and metrics off)

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if sys.argv[1:2] == ["cold-server"]:  # the cold start probe's moto server (cold_start runs it)
        cold_server(int(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1:] == ["overview"]:  # only the overview's figures: .venv/bin/python scripts/bench_scale.py overview
        with contextlib.redirect_stdout(io.StringIO()):
            mock = start_aws()
            try:
                figures = overview_reads()
            finally:
                benchlib._reset_caches()
                mock.stop()
        print(f"machine load: {benchlib.load()}")
        print("\n".join(overview_lines(figures)))
        sys.exit(0)
    with contextlib.redirect_stdout(io.StringIO()):
        if sys.argv[1:] == ["capacity"]:  # section 1 only
            text, failed = capacity_report()
        else:
            text, failed = report(int(sys.argv[1]) if len(sys.argv) > 1 else 50, 5)
    print(f"machine load: {benchlib.load()}")
    print(text)
    print("\n".join(f"FAIL: {f}" for f in failed) or "OK")
    sys.exit(1 if failed else 0)
