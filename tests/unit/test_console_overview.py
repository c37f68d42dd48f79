"""GET /v1/overview: requests from the consumer's per-minute counters, deliveries from the delivery rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support.calls import flush_logs
from tests.support.console import call
from tests.support.golive import sale
from tests.support.webhooks import Receiver, create_endpoint, run_pipeline

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def log(merchant_id: str, *, status: int, latency: int, minutes_ago: float, mode: str = "test", signature: str = "not_required",
        user: str | None = None, path: str = "/v1/payments", n: list[int] = [0]) -> None:  # noqa: B006 - a counter
    from tahsil.api import requestlog

    n[0] += 1
    received = NOW - dt.timedelta(minutes=minutes_ago)
    requestlog.store([requestlog.Record(
        request_id=f"req-{n[0]}", received_at=received.isoformat(), merchant_id=merchant_id, mode=mode, key_id="key_x",
        method="GET", path=path, route=path, status=status, latency_ms=latency, rate_limit={"outcome": "allowed"},
        signature={"outcome": signature, "reason": None if signature != "denied" else "clock_drift",
                   "drift_s": 2 if signature != "not_required" else None},
        body_sha256="0" * 64, api_version="2026-06-14.basra", user=user)])


def overview(key: str, **query: str) -> Any:
    answer = call("overview-get", key, query={"from": (NOW - dt.timedelta(hours=2)).isoformat(), "to": NOW.isoformat(),
                                             **query})
    assert answer.status == 200, answer.body
    return answer.data


def test_p95_is_the_nearest_rank() -> None:
    from tahsil.console.overview import p95

    assert p95([]) is None and p95([7]) == 7
    assert p95(list(range(1, 101))) == 95 and p95(list(range(1, 21))) == 19 and p95([5, 1, 3]) == 5


def test_requests_rates_latency_and_status_codes_come_from_the_logs(merchant: dict[str, Any]) -> None:
    m = merchant["merchant_id"]
    latencies = list(range(10, 210, 10))  # 20 requests: 10 ms ... 200 ms
    statuses = [200] * 15 + [201, 404, 409, 429, 500]
    for i, (status, latency) in enumerate(zip(statuses, latencies, strict=True)):
        log(m, status=status, latency=latency, minutes_ago=100 - i * 5,
            signature="passed" if i < 3 else "denied" if i == 3 else "not_required")
    log(m, status=200, latency=5, minutes_ago=10, mode="live")            # another mode
    log(m, status=200, latency=5, minutes_ago=10, user="staff@x.example")  # the dashboard itself
    log(m, status=200, latency=5, minutes_ago=180)                         # before the window
    data = overview(merchant["keys"]["test"]["secret"])
    assert data["requests"] == {"total": 20, "succeeded": 16, "client_errors": 3, "server_errors": 1, "rate_limited": 1,
                                "success_rate": 80.0, "error_rate": 20.0}
    assert data["latency_ms"] == {"avg": 105.0, "p95": 190, "max": 200}
    assert data["status_codes"] == [{"status": 200, "count": 15}, {"status": 201, "count": 1}, {"status": 404, "count": 1},
                                    {"status": 409, "count": 1}, {"status": 429, "count": 1}, {"status": 500, "count": 1}]
    assert data["status_classes"] == {"2xx": 16, "3xx": 0, "4xx": 3, "5xx": 1}
    assert data["window"]["bucket_seconds"] == 300 and sum(b["requests"] for b in data["buckets"]) == 20
    assert sum(b["errors"] for b in data["buckets"]) == 4
    assert data["signatures"]["passed"] == 3 and data["signatures"]["denied"] == 1
    assert data["signatures"]["latest"]["outcome"] == "denied" and data["signatures"]["latest"]["reason"] == "clock_drift"
    assert data["limits"]["truncated"] is False
    with_dashboard = overview(merchant["keys"]["test"]["secret"], include_dashboard="true")
    assert with_dashboard["requests"]["total"] == 21


def test_bucket_size_follows_the_window(merchant: dict[str, Any]) -> None:
    key = merchant["keys"]["test"]["secret"]
    day = call("overview-get", key, query={"from": (NOW - dt.timedelta(days=1)).isoformat(), "to": NOW.isoformat()}).data
    week = call("overview-get", key, query={"from": (NOW - dt.timedelta(days=7)).isoformat(), "to": NOW.isoformat()}).data
    assert day["window"]["bucket_seconds"] == 3600 and len(day["buckets"]) in (24, 25)
    assert week["window"]["bucket_seconds"] == 86400 and len(week["buckets"]) in (7, 8)
    default = call("overview-get", key, query={}).data
    assert default["window"]["bucket_seconds"] == 3600


@pytest.mark.parametrize(("query", "param"), [
    ({"from": "2026-06-15T00:00:00Z", "to": "2026-06-14T00:00:00Z"}, "from"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-06-14T00:00:00Z"}, "from"),
    ({"from": "yesterday"}, "from"),
])
def test_a_bad_window_is_a_400(merchant: dict[str, Any], query: dict[str, str], param: str) -> None:
    answer = call("overview-get", merchant["keys"]["test"]["secret"], query=query)
    assert answer.status == 400 and answer.error["param"] == param, answer.body


def test_the_work_follows_the_window_not_the_number_of_requests(merchant: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import dal

    reads: list[str] = []
    real = dal.query_page
    monkeypatch.setattr(dal, "query_page", lambda table, pk, **kw: reads.append(pk) or real(table, pk, **kw))
    key = merchant["keys"]["test"]["secret"]
    log(merchant["merchant_id"], status=200, latency=10, minutes_ago=60)
    overview(key)
    few = [r for r in reads if r.startswith("CNT#")]
    for i in range(40):
        log(merchant["merchant_id"], status=200, latency=10, minutes_ago=59 - i / 2)
    reads.clear()
    data = overview(key)
    assert [r for r in reads if r.startswith("CNT#")] == few and not [r for r in reads if r.startswith("LOG#")]
    assert data["limits"]["truncated"] is False and data["requests"]["total"] == 41
    assert data["window"]["complete_from"] == data["window"]["from"]
    assert data["limits"]["counter_items_read"] <= 22  # one item per minute that saw requests (60 to 39.5 min ago)


def test_a_redelivered_record_is_counted_once(merchant: dict[str, Any]) -> None:
    from tahsil.api import requestlog

    record = requestlog.Record(
        request_id="req-dup", received_at=(NOW - dt.timedelta(minutes=30)).isoformat(), merchant_id=merchant["merchant_id"],
        mode="test", key_id="key_x", method="GET", path="/v1/payments", route="/v1/payments", status=503, latency_ms=77,
        rate_limit={}, signature={"outcome": "passed", "drift_s": 1}, body_sha256="0" * 64, api_version="2026-06-14.basra")
    assert requestlog.store([record]) == []
    other = record.model_copy(update={"request_id": "req-dup-2", "status": 200})
    assert requestlog.store([record, other, record]) == []  # the same message again, beside a new one
    data = overview(merchant["keys"]["test"]["secret"])
    assert data["requests"]["total"] == 2 and data["requests"]["server_errors"] == 1
    assert data["status_codes"] == [{"status": 200, "count": 1}, {"status": 503, "count": 1}]
    assert data["signatures"]["passed"] == 2 and data["latency_ms"] == {"avg": 77.0, "p95": 77, "max": 77}


def test_deliveries_and_the_latest_webhook_response(local: Any, merchant: dict[str, Any], receiver: Receiver) -> None:  # noqa: F811
    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url).data
    receiver.plan = [503]
    sale(key)
    sale(key)
    run_pipeline()
    data = call("overview-get", key, query={}).data["deliveries"]
    assert data["total"] == 2 and data["delivered"] == 1 and data["retrying"] == 1 and data["attempts"] == 2
    latest = data["latest_response"]
    assert latest["status_code"] in (200, 503) and latest["endpoint_id"] == endpoint["id"]
    assert latest["latency_ms"] is not None and latest["event_type"] == "payment.captured"
    assert latest["attempt_id"].startswith(latest["event_id"] + "/" + endpoint["id"])
    assert data["endpoints"] == [{"endpoint_id": endpoint["id"], "url": receiver.url, "total": 2, "delivered": 1, "failed": 0}]


def test_real_traffic_shows_up_after_the_log_consumer_runs(merchant: dict[str, Any]) -> None:
    key = merchant["keys"]["test"]["secret"]
    sale(key)
    call("payments-get", key, path_id="pay_DoesNotExist000000000")
    flush_logs()
    data = call("overview-get", key, query={}).data
    assert data["requests"]["total"] == 2 and data["status_classes"]["2xx"] == 1 and data["status_classes"]["4xx"] == 1


def test_the_overview_needs_logs_read(merchant: dict[str, Any]) -> None:
    from tests.support.calls import create_key

    narrow = create_key(merchant["keys"]["test"]["secret"], scopes=["payments:read"]).data["secret"]
    answer = call("overview-get", narrow, query={})
    assert answer.status == 403 and answer.error["required_scope"] == "logs:read"
