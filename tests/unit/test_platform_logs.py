"""Request logs: every /v1 and /public request recorded off the hot path, kept 30 days, listed with filters."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any

import pytest

from tests.support.calls import PAYMENT, authorize, call, consume, create_key, flush_logs, queued_records, sqs_event
from tests.support.lambdas import load_sqs_event


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


def logs(key: str, **query: str) -> Any:
    answer = call("request-logs-list", key, query=query)
    assert answer.status == 200, answer.body
    return answer.data


def test_every_request_is_recorded_with_hash_but_never_body(sk: str, merchant: dict[str, Any]) -> None:
    ok = authorize(sk, idem="order-9")
    bad = call("payments-authorize", sk, body={"amount": 0, "currency": "USD", "card": PAYMENT["card"]})
    anonymous = call("payments-list", "sk_test_" + "x" * 32)
    records = {r["request_id"]: r for r in flush_logs()}
    assert len(records) == 3
    first = next(r for r in records.values() if r["status"] == 200)
    assert first["method"] == "POST" and first["path"] == "/v1/payments/authorize"
    assert first["route"] == "/v1/payments/authorize" and first["idempotency_key"] == "order-9"
    assert first["merchant_id"] == merchant["merchant_id"] and first["mode"] == "test" and first["key_id"].startswith("key_")
    assert first["rate_limit"]["outcome"] == "allowed" and first["rate_limit"]["class"] == "payments"
    assert first["source_ip"] == "198.51.100.7" and first["api_version"] == "2026-06-14.basra"
    assert first["latency_ms"] >= 0 and first["received_at"].endswith("Z")
    assert first["body_sha256"] == hashlib.sha256(json.dumps(PAYMENT).encode()).hexdigest()
    assert "4242424242424242" not in json.dumps(records) and '"cvv"' not in json.dumps(records)
    invalid = next(r for r in records.values() if r["status"] == 400)
    assert invalid["error_code"] == "INVALID_REQUEST" and invalid["rate_limit"] == {"outcome": "not_counted"}
    unknown = next(r for r in records.values() if r["status"] == 401)
    assert unknown["merchant_id"] is None and unknown["key_id"] is None
    assert ok.status == 200 and bad.status == 400 and anonymous.status == 401


def test_logs_are_listed_newest_first_with_filters_and_a_cursor(sk: str) -> None:
    reader = create_key(sk, scopes=["payments:read", "payments:create", "logs:read"]).data
    for _ in range(3):
        authorize(sk)
    call("payments-get", sk, path_id="pay_doesnotexist000000")
    call("payments-get", sk, path_id="bad id")
    authorize(reader["secret"])
    flush_logs()

    everything = logs(sk, limit="100")["request_logs"]
    assert [e["status"] for e in everything] == [200, 400, 404, 200, 200, 200, 201]  # newest first; 201: the new key
    assert all(e["created_at"] >= n["created_at"] for e, n in zip(everything, everything[1:], strict=False))

    assert [e["status"] for e in logs(sk, status="4xx")["request_logs"]] == [400, 404]
    assert [e["status"] for e in logs(sk, status="404")["request_logs"]] == [404]
    by_route = logs(sk, path="/v1/payments/{id}")["request_logs"]
    assert len(by_route) == 2 and {e["route"] for e in by_route} == {"/v1/payments/{id}"}
    assert len(logs(sk, path="/v1/payments/pay_doesnotexist000000")["request_logs"]) == 1
    assert [e["key_id"] for e in logs(sk, key_id=reader["id"])["request_logs"]] == [reader["id"]]

    page1 = logs(sk, limit="4")
    assert len(page1["request_logs"]) == 4 and page1["has_more"] is True
    page2 = logs(sk, limit="4", cursor=page1["next_cursor"])
    assert page2["has_more"] is False and page2["next_cursor"] is None
    assert [e["id"] for e in page1["request_logs"] + page2["request_logs"]] == [e["id"] for e in everything]

    newest = everything[0]["created_at"]
    since = logs(sk, created_gte=newest)["request_logs"]
    assert [e["id"] for e in since] == [everything[0]["id"]]
    assert logs(sk, created_lte="2000-01-01T00:00:00Z")["request_logs"] == []


def test_bad_filters_are_400s_naming_them(sk: str) -> None:
    assert call("request-logs-list", sk, query={"status": "6xx"}).error["param"] == "status"
    assert call("request-logs-list", sk, query={"cursor": "garbage"}).error["param"] == "cursor"
    assert call("request-logs-list", sk, query={"limit": "0"}).error["param"] == "limit"


def test_logs_need_the_logs_read_scope_and_stay_within_merchant_and_mode(sk: str, merchant: dict[str, Any]) -> None:
    from tahsil.console import ops

    authorize(sk)
    authorize(merchant["keys"]["live"]["secret"])
    other = ops.create_merchant("Other")["keys"]["test"]["secret"]
    authorize(other)
    flush_logs()
    assert len(logs(sk)["request_logs"]) == 1
    assert len(logs(merchant["keys"]["live"]["secret"])["request_logs"]) == 1
    assert call("request-logs-list", create_key(sk, scopes=["payments:read"]).data["secret"]).status == 403


def test_items_live_30_days(sk: str) -> None:
    from tahsil.store import dal

    authorize(sk)
    flush_logs()
    items = [dal.load(i) for i in dal._ddb().scan(TableName=dal.request_logs_table())["Items"]]
    (item,) = [i for i in items if i["pk"].startswith("LOG#")]
    received = dt.datetime.fromisoformat(item["received_at"].replace("Z", "+00:00")).timestamp()
    assert item["ttl"] - received == pytest.approx(30 * 86400, abs=2)
    assert "body" not in item
    counted = [i for i in items if i["pk"].startswith("CNT#")]  # its minute and hour counters expire with it
    assert len(counted) == 2 and all(i["ttl"] == item["ttl"] for i in counted)


def test_a_lost_queue_never_fails_the_request(sk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.kernel import config

    monkeypatch.setenv("REQUEST_LOG_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/nowhere")
    config.settings.cache_clear()
    answer = authorize(sk)
    assert answer.status == 200
    monkeypatch.delenv("REQUEST_LOG_QUEUE_URL")
    config.settings.cache_clear()
    assert authorize(sk).status == 200


def test_the_consumer_reports_only_the_messages_it_could_not_take(sk: str) -> None:
    authorize(sk)
    (good,) = queued_records()
    event = sqs_event([good, {"MessageId": "poison", "Body": "{not json"}])
    assert consume(event) == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert len(logs(sk)["request_logs"]) == 1


def test_the_sample_sqs_event_is_consumed(aws_env: Any) -> None:
    from tahsil.store import dal

    assert consume(load_sqs_event("request-logs-consume")) == {"batchItemFailures": []}
    items = [dal.load(i) for i in dal._ddb().scan(TableName=dal.request_logs_table())["Items"]]
    (item,) = [i for i in items if i["pk"].startswith("LOG#")]
    assert item["pk"] == "LOG#mer_abc123def456ghi789AB#test" and item["signature"]["drift_s"] == 2
    assert sorted(i["pk"] for i in items if i["pk"].startswith("CNT#")) == [
        "CNT#REQ#mer_abc123def456ghi789AB#test#h", "CNT#REQ#mer_abc123def456ghi789AB#test#m"]


def test_the_consumer_moves_last_used_at_forward(sk: str) -> None:
    key = create_key(sk).data
    assert key["last_used_at"] is None
    authorize(key["secret"])
    flush_logs()
    listed = {k["id"]: k for k in call("api-keys-list", sk).data["api_keys"]}
    used = listed[key["id"]]["last_used_at"]
    assert used and abs(dt.datetime.fromisoformat(used.replace("Z", "+00:00")).timestamp() - time.time()) < 120


def test_last_used_at_moves_at_most_once_a_minute(sk: str, merchant: dict[str, Any]) -> None:
    """A busy key is not rewritten on every batch: a request within a minute of the stored time writes nothing."""
    from tahsil.api import requestlog

    key = create_key(sk).data
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)

    def batch(seconds: int) -> str | None:
        requestlog.touch_keys([requestlog.Record(
            request_id=f"req-{seconds}", received_at=(start + dt.timedelta(seconds=seconds)).isoformat(),
            merchant_id=merchant["merchant_id"], mode="test", key_id=key["id"], method="GET", path="/v1/payments",
            route="/v1/payments", status=200, latency_ms=5, rate_limit={}, signature={}, body_sha256="0" * 64,
            api_version="2026-06-14.basra")])
        return {k["id"]: k for k in call("api-keys-list", sk).data["api_keys"]}[key["id"]]["last_used_at"]

    def at(seconds: int) -> str:
        return (start + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert batch(0) == at(0)
    assert batch(59) == at(0)  # within the minute: not rewritten
    assert batch(61) == at(61)
    assert batch(30) == at(61)  # never moves back


def test_every_api_function_may_count_its_rate_limit_and_send_its_log() -> None:
    """On AWS a function without ApiPlatformPolicy would fail open on limits and lose its logs."""
    from tahsil_local import template

    doc = template.load()
    for logical_id, res in doc["Resources"].items():
        props = res.get("Properties") or {}
        if res["Type"] == "AWS::Serverless::Function" and any(e["Type"] == "Api" for e in (props.get("Events") or {}).values()):
            assert {"Ref": "ApiPlatformPolicy"} in (props.get("Policies") or []), logical_id
