"""Rate limits (seed 002): 20/s and 10,000/h for payments, 100/s for queries per merchant, 50/s per IP in public.

The limiter's clock is frozen or moved by the tests (``tahsil.api.ratelimit.seconds``); the
counters are real DynamoDB items (moto), shared by every handler, never process memory.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.support.calls import PAYMENT, authorize, call
from tests.support.lambdas import invoke, load_event


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The limiter's clock: ``frozen["t"]`` is what it reads (mid-second, far from a boundary)."""
    import time

    clock = {"t": int(time.time()) + 0.5}
    monkeypatch.setattr("tahsil.api.ratelimit.seconds", lambda: clock["t"])
    return clock


def payment_rows() -> int:
    from tahsil.store import dal

    rows = dal._ddb().scan(TableName=dal.payments_table())["Items"]
    return sum(1 for r in rows if r["pk"]["S"].startswith("PAY#"))


def test_the_21st_payment_in_a_second_is_a_429_with_headers_and_never_runs(sk: str, frozen: dict[str, float]) -> None:
    answers = [authorize(sk) for _ in range(25)]
    statuses = [a.status for a in answers]
    assert statuses == [200] * 20 + [429] * 5
    assert payment_rows() == 20  # a refused request never reached the domain action
    ok, refused = answers[0], answers[20]
    assert ok.headers["x-ratelimit-limit"] == "20" and ok.headers["x-ratelimit-remaining"] == "19"
    assert ok.headers["x-ratelimit-reset"] == str(int(frozen["t"]) + 1)
    assert refused.headers["retry-after"] == "1" and refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.error["code"] == "RATE_LIMITED" and refused.error["message"] == "rate limit exceeded: 20 requests per second"
    frozen["t"] += 1  # the next second is a new window
    assert authorize(sk).status == 200


def test_limits_are_per_merchant(sk: str, frozen: dict[str, float]) -> None:
    from tahsil.console import ops

    for _ in range(20):
        authorize(sk)
    assert authorize(sk).status == 429
    other = ops.create_merchant("Other")["keys"]["test"]["secret"]
    assert authorize(other).status == 200


def test_queries_have_their_own_100_per_second(sk: str, frozen: dict[str, float]) -> None:
    for _ in range(20):
        authorize(sk)
    listing = call("payments-list", sk)
    assert listing.status == 200 and listing.headers["x-ratelimit-limit"] == "100"


def test_the_hourly_limit_holds_across_seconds_and_is_overridable_per_merchant(merchant: dict[str, Any], sk: str,
                                                                                frozen: dict[str, float]) -> None:
    from tahsil.identity import account

    account.set_rate_limits(merchant["merchant_id"], {"payments": {"per_hour": 3}})
    frozen["t"] = (int(frozen["t"]) // 3600) * 3600 + 10.5  # early in an hour
    results = []
    for _ in range(4):
        results.append(authorize(sk))
        frozen["t"] += 2
    assert [a.status for a in results] == [200, 200, 200, 429]
    refused = results[3]
    assert refused.error["message"] == "rate limit exceeded: 3 requests per hour"
    assert refused.headers["x-ratelimit-limit"] == "3" and int(refused.headers["retry-after"]) > 3500


def test_limits_are_configuration(monkeypatch: pytest.MonkeyPatch, sk: str, frozen: dict[str, float]) -> None:
    from tahsil.kernel import config

    monkeypatch.setenv("RATE_LIMIT_QUERIES_PER_SECOND", "3")
    config.settings.cache_clear()
    assert [call("payments-list", sk).status for _ in range(4)] == [200, 200, 200, 429]


def test_a_refused_idempotent_request_runs_when_retried_later(sk: str, frozen: dict[str, float]) -> None:
    for _ in range(20):
        authorize(sk)
    refused = authorize(sk, idem="order-77")
    assert refused.status == 429
    frozen["t"] += 1
    retried = authorize(sk, idem="order-77")
    assert retried.status == 200 and "idempotent-replayed" not in retried.headers
    assert authorize(sk, idem="order-77").headers["idempotent-replayed"] == "true"


def test_replays_count_and_are_refused_over_the_limit(sk: str, frozen: dict[str, float]) -> None:
    first = authorize(sk, idem="same")
    replays = [authorize(sk, idem="same") for _ in range(20)]
    assert first.status == 200
    assert [a.status for a in replays] == [200] * 19 + [429]
    assert payment_rows() == 1


def test_public_endpoints_allow_50_per_second_per_ip(frozen: dict[str, float], aws_env: Any) -> None:
    def public(ip: str) -> Any:
        event = load_event("public-payment-intents-get")
        event["requestContext"]["identity"]["sourceIp"] = ip
        return invoke("GetPublicPaymentIntentFunction", event)

    answers = [public("203.0.113.5") for _ in range(51)]
    assert {a.status for a in answers[:50]} == {404}  # counted, then answered (no such intent)
    assert answers[50].status == 429 and answers[50].headers["retry-after"] == "1"
    assert answers[50].headers["x-ratelimit-limit"] == "50"
    assert public("203.0.113.6").status == 404  # another address, its own window


def test_the_limiter_fails_open_when_it_cannot_count(sk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import dal

    def broken(*_: Any, **__: Any) -> int:
        raise RuntimeError("throttled")

    monkeypatch.setattr(dal, "increment", broken)
    monkeypatch.setattr(dal, "update_counter", broken)
    answer = authorize(sk)
    assert answer.status == 200
    assert call("payments-list", sk).status == 200  # a per-second-only class too


def test_authorize_makes_five_calls_but_only_three_in_sequence(sk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Key lookup -> (idempotency lock || the rate-limit counter || the card's velocity count) -> one transaction
    holding the payment and the idempotency record's completion; the log goes to SQS."""
    from botocore.client import BaseClient

    calls: list[tuple[str, str, str]] = []
    original = BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append((threading.current_thread().name, client.meta.service_model.service_name, operation))
        return original(client, operation, params)

    authorize(sk, idem="warm-up")  # lazy clients, the pepper, a KMS data key
    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    assert authorize(sk, idem="counted").status == 200
    main = threading.current_thread().name
    ddb_main = [op for thread, service, op in calls if service == "dynamodb" and thread == main]
    ddb_side = [(thread.split("_")[0], op) for thread, service, op in calls if service == "dynamodb" and thread != main]
    assert ddb_main == ["GetItem", "PutItem", "TransactWriteItems"]
    # one counter item holding the per-second and per-hour windows, and the card's velocity count
    # (tahsil.payments.payments.EarlyCount), in worker threads
    assert sorted(ddb_side) == [("ratelimit", "UpdateItem"), ("velocity", "UpdateItem")]
    assert [op for _, service, op in calls if service == "sqs"] == ["SendMessage"]
    assert PAYMENT["amount"] == 9999


def rate_items() -> list[dict[str, Any]]:
    from tahsil.store import codec, dal

    return [codec.load(i) for i in dal._ddb().scan(TableName=dal.rate_limit_table())["Items"]]


def counter_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every write to the rate-limit table (failed conditional ones too: they cost a write unit)."""
    from botocore.client import BaseClient

    from tahsil.store import dal

    writes: list[str] = []
    original = BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "UpdateItem" and params.get("TableName") == dal.rate_limit_table():
            writes.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    return writes


def test_a_payment_request_writes_one_counter_item_holding_both_windows(sk: str, frozen: dict[str, float],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    frozen["t"] = (int(frozen["t"]) // 3600) * 3600 + 10.5  # early in an hour
    writes = counter_writes(monkeypatch)
    statuses = []
    for _ in range(3):  # three seconds, two requests in each
        statuses += [authorize(sk).status for _ in range(2)]
        frozen["t"] += 1
    assert statuses == [200] * 6
    assert len(writes) == 6  # one write per request, whether it opens a second or not
    [item] = [i for i in rate_items() if "#payments#" in i["pk"]]
    assert item["pk"].endswith(f"#h#{int(frozen['t']) // 3600}")
    assert item["n"] == 6 and item["c"] == 2 and item["s"] == int(frozen["t"]) - 1 and item["ttl"] > frozen["t"] + 3600


def test_the_per_second_window_stays_exact_when_containers_race_for_a_new_second(sk: str, frozen: dict[str, float],
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads as containers that each last saw an older second: 60 requests at once, 20 admitted, all counted."""
    from tahsil.api import ratelimit

    frozen["t"] = (int(frozen["t"]) // 3600) * 3600 + 10.5  # early in an hour
    writes = counter_writes(monkeypatch)
    limit = ratelimit.Limit(per_second=20, per_hour=1000)
    subject = "mer_race"
    for round_ in range(3):
        ratelimit._seen.clear()  # every "container" guesses that it opens the second
        barrier = threading.Barrier(12)
        decisions: list[Any] = []

        def burst() -> None:
            barrier.wait(timeout=10)  # noqa: B023 - joined below
            for _ in range(5):
                decisions.append(ratelimit.check(subject, "payments", limit))  # noqa: B023 - joined below
                ratelimit._seen.clear()  # the next request may come from another container

        threads = [threading.Thread(target=burst) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(decisions) == 60
        assert sum(d.allowed for d in decisions) == 20
        assert sorted(d.counts["second"] for d in decisions) == list(range(1, 61))
        assert max(d.counts["hour"] for d in decisions) == 60 * (round_ + 1)
        assert all(d.outcome in ("allowed", "limited") for d in decisions)
        frozen["t"] += 1
    assert 180 <= len(writes) <= 180 + 3 * 60  # a lost guess costs one more write, never more


def test_the_hour_window_starts_afresh_with_the_hour(merchant: dict[str, Any], sk: str, frozen: dict[str, float]) -> None:
    from tahsil.identity import account

    account.set_rate_limits(merchant["merchant_id"], {"payments": {"per_hour": 2}})
    frozen["t"] = (int(frozen["t"]) // 3600 + 1) * 3600 - 1.5  # late in an hour
    assert [authorize(sk).status for _ in range(3)] == [200, 200, 429]
    frozen["t"] += 2  # the next hour
    assert authorize(sk).status == 200
    assert len([i for i in rate_items() if "#payments#h#" in i["pk"]]) == 2


def test_a_container_whose_clock_lags_counts_in_the_later_window(frozen: dict[str, float], aws_env: Any) -> None:
    from tahsil.api import ratelimit

    limit = ratelimit.Limit(per_second=2, per_hour=100)
    now = frozen["t"] = (int(frozen["t"]) // 3600) * 3600 + 10.5  # early in an hour
    assert ratelimit.check("mer_skew", "payments", limit).allowed
    ratelimit._seen.clear()
    ahead = ratelimit.start("mer_skew", "payments", limit, at=now + 1).result()  # another container, a second ahead
    assert ahead.allowed and ahead.counts == {"second": 1, "hour": 2}
    ratelimit._seen.clear()
    late = [ratelimit.start("mer_skew", "payments", limit, at=now).result() for _ in range(2)]
    assert [d.counts["second"] for d in late] == [2, 3] and [d.allowed for d in late] == [True, False]
    assert late[1].counts["hour"] == 4
    assert late[1].reset == int(now) + 2 and late[1].window == "second"  # the window it was counted in


def test_processor_notifications_have_their_own_budget_apart_from_browsers(frozen: dict[str, float], aws_env: Any,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Adyen sends from a few addresses, in bursts: its notifications do not share browsers' 50/s per IP."""
    from tahsil.kernel import config

    monkeypatch.setenv("RATE_LIMIT_NOTIFICATIONS_PER_SECOND", "80")  # the template's default is 500
    config.settings.cache_clear()

    def public(ip: str) -> Any:
        event = load_event("public-payment-intents-get")
        event["requestContext"]["identity"]["sourceIp"] = ip
        return invoke("GetPublicPaymentIntentFunction", event)

    def notification(ip: str) -> Any:
        event = load_event("connectors-adyen-notifications", body='{"live": "false", "notificationItems": []}')
        event["path"] = "/connectors/adyen/mer_NoConnectorHere01/notifications"
        event["pathParameters"] = {"merchant_id": "mer_NoConnectorHere01"}
        event["requestContext"]["identity"]["sourceIp"] = ip
        return invoke("AdyenNotificationsFunction", event)

    adyen = "198.51.100.7"
    assert [public(adyen).status for _ in range(51)][-1] == 429  # browsers' budget from that address is spent
    answers = [notification(adyen) for _ in range(81)]
    assert {a.status for a in answers[:80]} == {401}  # counted in their own class, then refused (no connector)
    assert answers[80].status == 429 and answers[80].headers["x-ratelimit-limit"] == "80"
    config.settings.cache_clear()
