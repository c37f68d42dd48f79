"""Request counters (tahsil.store.counters via the request-log consumer): exact under duplicates,
concurrent consumers and transaction conflicts; the overview's answer equals a count of the rows."""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

import pytest

from tests.support.console import call

NOW = dt.datetime.now(dt.UTC).replace(second=30, microsecond=0)


def record(merchant_id: str, n: int, *, minutes_ago: float, status: int = 200, latency: int = 10,
           user: str | None = None, mode: str = "test") -> Any:
    from tahsil.api import requestlog

    return requestlog.Record(
        request_id=f"req-{n:05d}", received_at=(NOW - dt.timedelta(minutes=minutes_ago)).isoformat(),
        merchant_id=merchant_id, mode=mode, key_id="key_x", method="GET", path="/v1/payments", route="/v1/payments",
        status=status, latency_ms=latency, rate_limit={}, signature={"outcome": "not_required"}, body_sha256="0" * 64,
        api_version="2026-06-14.basra", user=user)


def rows(merchant_id: str, since: dt.datetime) -> list[dict[str, Any]]:
    """The log rows themselves, counted the slow way."""
    from tahsil.store import dal

    items = (dal.load(x) for x in dal._ddb().scan(TableName=dal.request_logs_table())["Items"])
    return [i for i in items if i["pk"] == f"LOG#{merchant_id}#test" and i["received_at"] >= since.isoformat()]


def test_latency_buckets_and_the_nearest_rank() -> None:
    from tahsil.store import counters

    assert [counters.latency_bucket(v) for v in (0, 1, 99, 100, 101, 190, 999, 1001, 10_001)] == [
        0, 1, 99, 100, 110, 190, 1000, 1100, 11_000]
    assert all(v <= counters.latency_bucket(v) <= max(v * 1.1, v + 1) for v in range(0, 20_000, 7))
    histogram = {counters.latency_bucket(v): 1 for v in range(1, 101)}
    assert counters.quantile(histogram, 0.95) == 95 and counters.quantile({}, 0.95) is None


def test_concurrent_consumers_and_redelivered_messages_count_each_request_once(merchant: dict[str, Any]) -> None:
    from tahsil.api import requestlog

    m = merchant["merchant_id"]
    statuses = [200, 201, 404, 429, 500]
    batch = [record(m, i, minutes_ago=(i % 50) / 2, status=statuses[i % 5], latency=5 + i % 300) for i in range(150)]
    deliveries = batch * 3  # every message arrives three times, in different batches and consumers
    random.Random(15).shuffle(deliveries)
    chunks = [deliveries[i:i + 10] for i in range(0, len(deliveries), 10)]
    failures: list[Any] = []
    lock = threading.Lock()

    def consumer(mine: list[list[Any]]) -> None:
        for chunk in mine:
            left = requestlog.store(chunk)
            with lock:
                failures.extend(left)

    threads = [threading.Thread(target=consumer, args=(chunks[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    while failures:  # what a conflict left over comes back from the queue
        again, failures[:] = list(failures), []
        failures.extend(requestlog.store(again))
    data = call("overview-get", merchant["keys"]["test"]["secret"],
                query={"from": (NOW - dt.timedelta(hours=1)).isoformat(), "to": NOW.isoformat()}).data
    assert data["requests"]["total"] == 150
    assert data["status_codes"] == [{"status": s, "count": 30} for s in statuses]
    assert data["latency_ms"]["avg"] == round(sum(5 + i % 300 for i in range(150)) / 150, 1)
    assert data["latency_ms"]["max"] == max(5 + i % 300 for i in range(150))
    assert sum(b["requests"] for b in data["buckets"]) == 150


def test_a_transaction_conflict_is_retried_and_counted_once(merchant: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.api import requestlog
    from tahsil.store import dal

    real = dal.transact
    calls = {"n": 0}

    def conflicting(actions: list[dict[str, Any]]) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise dal.ConditionFailed(None)  # TransactionConflict on a hot counter item
        real(actions)

    monkeypatch.setattr(dal, "transact", conflicting)
    assert requestlog.store([record(merchant["merchant_id"], 1, minutes_ago=5)]) == []
    monkeypatch.setattr(dal, "transact", lambda actions: (_ for _ in ()).throw(dal.ConditionFailed(None)))
    lost = record(merchant["merchant_id"], 2, minutes_ago=5)
    assert requestlog.store([lost]) == [lost]  # reported to SQS, neither written nor counted
    monkeypatch.setattr(dal, "transact", real)
    assert requestlog.store([lost]) == []
    data = call("overview-get", merchant["keys"]["test"]["secret"], query={}).data
    assert data["requests"]["total"] == 2


def test_long_windows_use_hours_between_exact_edge_minutes(merchant: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.api import requestlog
    from tahsil.store import dal

    m = merchant["merchant_id"]
    since, until = NOW - dt.timedelta(days=2, minutes=7), NOW
    ages = [0, 3, 61, 600, 1500, 2000, 2880 + 6, 2880 + 7, 2880 + 8, 2880 + 200]  # minutes; the last two before `since`
    records = [record(m, i, minutes_ago=a, status=200 if i % 2 else 500, latency=10 * (i + 1)) for i, a in enumerate(ages)]
    records.append(record(m, 99, minutes_ago=1, user="staff@x.example"))
    assert requestlog.store(records) == []
    reads: list[str] = []
    real = dal.query_page
    monkeypatch.setattr(dal, "query_page", lambda table, pk, **kw: reads.append(pk) or real(table, pk, **kw))
    data = call("overview-get", merchant["keys"]["test"]["secret"],
                query={"from": since.isoformat(), "to": until.isoformat()}).data
    logged = [r for r in rows(m, since.replace(second=0)) if not r.get("user")]
    assert data["requests"]["total"] == len(logged) == 8
    assert data["requests"]["server_errors"] == sum(1 for r in logged if r["status"] == 500)
    requests = [r for r in reads if r.startswith("CNT#REQ#")]
    assert sorted(set(requests)) == [f"CNT#REQ#{m}#test#h", f"CNT#REQ#{m}#test#m"] and len(requests) == 3
    assert reads[3:] == [f"CNT#DLV#{m}#test#m"]  # the deliveries': minute items only, one page
    assert data["window"]["bucket_seconds"] == 86400 and sum(b["requests"] for b in data["buckets"]) == 8


def counter_items(merchant_id: str) -> list[dict[str, Any]]:
    from tahsil.store import dal

    items = (dal.load(x) for x in dal._ddb().scan(TableName=dal.request_logs_table())["Items"])
    return [i for i in items if i["pk"].startswith(f"CNT#REQ#{merchant_id}#test#")]


def test_the_highs_ride_in_the_counting_transaction_and_a_wrong_guess_is_corrected(
        merchant: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The largest latency and the latest signed request need no write of their own, and stay right
    when another consumer raised them meanwhile (its condition fails, the retry takes the other form)."""
    from botocore.client import BaseClient

    from tahsil.api import requestlog
    from tahsil.store import counters

    m = merchant["merchant_id"]
    calls: list[str] = []
    original = BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)

    def signed(n: int, *, seconds_ago: float, latency: int) -> Any:
        r = record(m, n, minutes_ago=seconds_ago / 60, latency=latency)
        return r.model_copy(update={"signature": {"outcome": "passed", "drift_s": 1}})

    assert requestlog.store([signed(1, seconds_ago=5, latency=50), record(m, 2, minutes_ago=0.05, latency=20)]) == []
    assert calls == ["TransactWriteItems"]  # logs, counts and highs: one transaction, nothing else
    counters._known.clear()  # another consumer, which never saw these items: it guesses "raise" and loses
    assert requestlog.store([signed(3, seconds_ago=10, latency=30)]) == []
    assert calls.count("TransactWriteItems") == 3 and "UpdateItem" not in calls
    for item in counter_items(m):
        assert item["amx"] == 50 and item["asig"]["request_id"] == "req-00001"  # neither lowered nor made older
    known = dict(counters._known)
    counters._known.clear()
    assert requestlog.store([signed(4, seconds_ago=1, latency=90)]) == []  # a consumer raises both
    counters._known.update(known)  # back to the first one, which knows only the older highs: it guesses right
    calls.clear()
    assert requestlog.store([record(m, 5, minutes_ago=0.01, latency=60)]) == []
    assert calls == ["TransactWriteItems", "TransactWriteItems"]  # guessed "raise" for 60 > 50, found 90: kept
    for item in counter_items(m):
        assert item["amx"] == 90 and item["asig"]["request_id"] == "req-00004" and item["an"] == 5
    assert requestlog.store([record(m, 5, minutes_ago=0.01, latency=60)]) == []  # redelivered: nothing twice
    assert all(i["an"] == 5 for i in counter_items(m))
    assert len(counter_items(m)) == 2  # its minute and its hour (NOW is mid-minute)
    assert len(rows(m, NOW - dt.timedelta(minutes=1))) == 5
