"""Request logs: one record per /v1 and /public request, kept 30 days.

The path a merchant waits on never writes DynamoDB for a log: ``tahsil.api.http.entrypoint``
builds the record once the answer is ready and sends it to SQS (``RequestLogQueue``, one
SendMessage with short timeouts; a failure is logged with a ``RequestLogSendFailed`` metric
and never fails the request). ``RequestLogConsumerFunction`` takes the queue in batches and
writes them with BatchWriteItem to ``RequestLogsTable``, reporting per-message failures.
The consumer also moves each key's ``last_used_at`` forward (at most once per key per batch),
so authentication never writes.

Table: ``LOG#<merchant>#<mode>`` / ``<received, µs>#<request id>``; requests that never
authenticated go to ``LOG#-#<day>`` (operators' eyes only). ``ttl`` = received + 30 days.

A record holds the SHA-256 of the body, never the body.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from tahsil.kernel import clock
from tahsil.kernel.config import settings
from tahsil.kernel.errors import InvalidRequest
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import logger, metrics
from tahsil.store import aws, counters, dal

RETENTION = dt.timedelta(days=30)
MAX_PAGES = 20  # pages of 100 read per list call when filters discard most rows


class Record(BaseModel):
    """One request, as the queue carries it."""

    model_config = ConfigDict(extra="ignore")

    request_id: str
    received_at: str  # ISO 8601 with microseconds
    merchant_id: str | None = None
    mode: str | None = None
    key_id: str | None = None
    method: str
    path: str
    route: str
    status: int
    latency_ms: int
    rate_limit: dict[str, Any]
    signature: dict[str, Any]
    body_sha256: str
    idempotency_key: str | None = None
    source_ip: str | None = None
    api_version: str
    error_code: str | None = None
    user: str | None = None  # the dashboard user who made it; None for an API key


def body_sha256(event: dict[str, Any]) -> str:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    return hashlib.sha256(raw).hexdigest()


def send(record: Record) -> bool:
    """Hand the record to the queue; never raises."""
    queue = settings().request_log_queue_url
    try:
        if not queue:
            raise RuntimeError("REQUEST_LOG_QUEUE_URL is not set")
        aws.client("sqs", quick=True).send_message(QueueUrl=queue, MessageBody=record.model_dump_json())
        return True
    except Exception:  # noqa: BLE001 - a lost log line must never fail the request it describes

        logger.exception("request log not sent", extra={"request_id": record.request_id})
        metrics.add_metric(name="RequestLogSendFailed", unit="Count", value=1)
        return False


# ---------------------------------------------------------------- the consumer


def partition(merchant_id: str | None, mode: str | None, received_at: str) -> str:
    if merchant_id and mode:
        return f"LOG#{merchant_id}#{mode}"
    return f"LOG#-#{received_at[:10]}"


def item_of(record: Record) -> dict[str, Any]:
    received = dt.datetime.fromisoformat(record.received_at.replace("Z", "+00:00"))
    return {
        "pk": partition(record.merchant_id, record.mode, record.received_at),
        "sk": f"{clock.sortable(received)}#{record.request_id}",
        **record.model_dump(),
        "ttl": int((received + RETENTION).timestamp()),
    }


def scope(merchant_id: str, mode: str) -> str:
    """The counters' scope of a merchant's mode (``tahsil.store.counters``, in RequestLogsTable)."""
    return counters.request_scope(merchant_id, mode)


def counts_of(record: Record) -> dict[str, int]:
    """What one request adds to its minute and hour: ``a`` for API traffic, ``d`` for the dashboard's own.

    ``<p>n`` requests, ``<p>s<status>`` per status, ``<p>l<bound>`` latency histogram,
    ``<p>ls`` latency sum, ``<p>gp`` / ``<p>gd`` signatures passed / denied.
    """
    p = "d" if record.user else "a"
    counts = {f"{p}n": 1, f"{p}s{record.status}": 1, f"{p}l{counters.latency_bucket(record.latency_ms)}": 1,
              f"{p}ls": max(0, record.latency_ms)}
    outcome = (record.signature or {}).get("outcome")
    if outcome in ("passed", "denied"):
        counts[f"{p}g{outcome[0]}"] = 1
    return counts


def highs_of(record: Record, item: dict[str, Any]) -> dict[str, counters.High]:
    """What one request may raise on its minute and hour: ``<p>mx`` the largest latency, and for a
    signed request ``<p>sig`` the latest one (ranked by its row's sort key, which starts with the time).
    Kept in the counting update itself (``tahsil.store.counters``): no write of their own."""
    p = "d" if record.user else "a"
    highs: dict[str, counters.High] = {f"{p}mx": (max(0, record.latency_ms), None)}
    if (record.signature or {}).get("outcome") in ("passed", "denied"):
        received = dt.datetime.fromisoformat(record.received_at.replace("Z", "+00:00"))
        highs[f"{p}sig"] = ({"sk": item["sk"], "request_id": record.request_id, "path": record.path,
                             "outcome": record.signature["outcome"], "reason": record.signature.get("reason"),
                             "drift_s": record.signature.get("drift_s"), "at": clock.iso(received)}, "sk")
    return highs


def store(records: list[Record]) -> list[Record]:
    """Write the records and count them (exactly once); return those that could not be written.

    A merchant's request goes in one transaction with the ADDs of its minute and hour counters
    (``tahsil.store.counters.record``, one update per counter item for the whole batch, which
    also carries the highs): a redelivered record is neither written nor counted again.
    Requests that never authenticated have no counters and are written with BatchWriteItem.
    """
    table = dal.request_logs_table()
    counted = [r for r in records if r.merchant_id and r.mode]
    anonymous = [r for r in records if not (r.merchant_id and r.mode)]
    failed = dal.batch_put(table, [item_of(r) for r in anonymous])
    if counted:
        rows: list[counters.Row] = []
        for r in counted:
            item = item_of(r)
            rows.append((item, scope(r.merchant_id or "", r.mode or ""),
                         dt.datetime.fromisoformat(r.received_at.replace("Z", "+00:00")), counts_of(r), highs_of(r, item)))
        failed += counters.record(table, rows)
    failed_ids = {f["request_id"] for f in failed}
    return [r for r in records if r.request_id in failed_ids]


LAST_USED_STEP = dt.timedelta(seconds=60)


def touch_keys(records: list[Record]) -> None:
    """Move each key's last_used_at forward to its latest request in the batch (best effort).

    At most once a minute per key (``LAST_USED_STEP``): a busy key is not rewritten on every batch
    (the key item and its ``by_merchant`` copy cost 2 write units), so ``last_used_at`` may lag by
    up to a minute.
    """
    latest: dict[tuple[str, str], str] = {}
    for r in records:
        if r.key_id and r.merchant_id and r.status != 401:
            stamp = clock.iso(dt.datetime.fromisoformat(r.received_at.replace("Z", "+00:00")))
            latest[(r.merchant_id, r.key_id)] = max(stamp, latest.get((r.merchant_id, r.key_id), ""))
    for (merchant_id, key_id), stamp in latest.items():
        recent = clock.iso(clock.parse(stamp) - LAST_USED_STEP)
        try:
            for item in dal.query_owner(dal.credentials_table(), f"MER#{merchant_id}", index="by_merchant",
                                        sk_from="KEY#", sk_to="KEY#~"):
                if item.get("key_id") == key_id:
                    if (item.get("last_used_at") or "") >= recent:
                        break  # moved forward less than a minute ago
                    dal.update(dal.credentials_table(), item["pk"], "KEY", "SET last_used_at = :t",
                               vals=dal.values(t=stamp), condition="attribute_exists(pk) AND "
                               "(attribute_not_exists(last_used_at) OR last_used_at < :t)")
                    break
        except dal.ConditionFailed:
            pass  # a later batch got there first


# ---------------------------------------------------------------- the list endpoint


def _cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    try:
        sk = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        sk = ""
    if "#" not in sk or not sk[:4].isdigit():
        raise InvalidRequest("cursor is not one this API returned", param="cursor")
    return sk


def view(item: dict[str, Any]) -> dict[str, Any]:
    received = dt.datetime.fromisoformat(item["received_at"].replace("Z", "+00:00"))
    return {
        "id": item["request_id"],
        "object": "request_log",
        "method": item["method"],
        "path": item["path"],
        "route": item["route"],
        "status": item["status"],
        "latency_ms": item["latency_ms"],
        "rate_limit": item.get("rate_limit") or {},
        "signature": item.get("signature") or {},
        "body_sha256": item["body_sha256"],
        "idempotency_key": item.get("idempotency_key"),
        "key_id": item.get("key_id"),
        "source_ip": item.get("source_ip"),
        "api_version": item["api_version"],
        "error_code": item.get("error_code"),
        "user": item.get("user"),
        "created_at": received.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
    }


def list_logs(p: Principal, *, limit: int = 20, cursor: str | None = None, status: str | None = None,
              path: str | None = None, key_id: str | None = None, method: str | None = None,
              created_gte: dt.datetime | None = None, created_lte: dt.datetime | None = None) -> dict[str, Any]:
    """Newest first. ``status``: ``404`` or a class ``4xx``; ``path``: a route template or an exact path."""
    filters: list[str] = []
    names: dict[str, str] = {}
    vals: dict[str, Any] = {}
    if status:
        names["#st"] = "status"
        if status.endswith("xx"):
            low = int(status[0]) * 100
            filters.append("#st BETWEEN :slo AND :shi")
            vals.update(dal.values(slo=low, shi=low + 99))
        else:
            filters.append("#st = :st")
            vals.update(dal.values(st=int(status)))
    if path:
        names["#rt"], names["#pa"] = "route", "path"
        filters.append("(#rt = :path OR #pa = :path)")
        vals.update(dal.values(path=path))
    if key_id:
        filters.append("key_id = :kid")
        vals.update(dal.values(kid=key_id))
    if method:
        names["#me"] = "method"
        filters.append("#me = :me")
        vals.update(dal.values(me=method.upper()))
    sk_from = clock.sortable(created_gte) if created_gte else None
    sk_to = clock.sortable(created_lte) + "~" if created_lte else None
    start = _uncursor(cursor) if cursor else None
    found: list[dict[str, Any]] = []
    last: str | None = start
    for _ in range(MAX_PAGES):
        items, last = dal.query_page(
            dal.request_logs_table(), f"LOG#{p.merchant_id}#{p.mode}", newest_first=True, sk_from=sk_from, sk_to=sk_to,
            start_sk=last, filter_expression=" AND ".join(filters) or None, names=names or None, vals=vals or None,
            page_size=100,
        )
        for item in items:
            found.append(item)
            if len(found) > limit:
                break
        if len(found) > limit or last is None:
            break
    has_more = len(found) > limit or last is not None
    page = found[:limit]
    if len(found) > limit:
        next_sk: str | None = page[-1]["sk"]
    elif last is not None:
        next_sk = last  # filters discarded many rows: continue where the reading stopped
    else:
        next_sk = None
    return {"object": "list", "request_logs": [view(i) for i in page], "has_more": has_more,
            "next_cursor": _cursor(next_sk) if has_more and next_sk else None}


def decode_message(body: str) -> Record:
    return Record.model_validate(json.loads(body))
