"""Expiry timers and test-mode time travel: the transitions, the events, exactly once."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from tahsil.kernel.events import payload_of
from tests.support.lambdas import invoke, load_event
from tests.support.payments import act, authorize, get, run_wheel, table_items

DAY = 86400


def advance(key: str, pid: str, seconds: int):
    return invoke("AdvancePaymentClockFunction", load_event("test-helpers-advance-payment", key=key, path_id=pid,
                                                            body={"seconds": seconds}))


def events_of(pid: str) -> list[str]:
    rows = [payload_of(r) for r in table_items() if r["pk"].startswith("EVT")]
    return [e["type"] for e in sorted(rows, key=lambda e: e["sequence"]) if e["data"]["object"]["id"] == pid]


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


def test_advancing_six_days_sends_the_expiring_warning_once(sk: str) -> None:
    pid = authorize(sk).data["id"]
    assert advance(sk, pid, 6 * DAY + 60).data["status"] == "authorized"
    assert advance(sk, pid, 60).data["status"] == "authorized"
    assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring"]


def test_advancing_past_seven_days_warns_then_expires_in_order_with_an_expiry_transaction(sk: str) -> None:
    pid = authorize(sk).data["id"]
    answer = advance(sk, pid, 8 * DAY)
    assert answer.status == 200 and answer.data["status"] == "expired"
    assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    txns = [r for r in table_items() if r["pk"].startswith("TXN") and r["payment_id"] == pid]
    assert sorted(t["type"] for t in txns) == ["authorization", "expiry"]
    assert act("capture", sk, pid, {}).status == 410


def test_the_real_timer_finds_nothing_to_do_after_time_travel(sk: str) -> None:
    from tahsil.payments import expiry

    pid = authorize(sk).data["id"]
    advance(sk, pid, 8 * DAY)
    assert expiry.act("payment", pid, "warn") is False
    assert expiry.act("payment", pid, "expire") is False
    assert events_of(pid).count("payment.expired") == 1


def test_a_captured_payment_is_left_alone_by_its_timer(sk: str) -> None:
    from tahsil.payments import expiry

    pid = authorize(sk).data["id"]
    act("capture", sk, pid, {})
    assert advance(sk, pid, 8 * DAY).data["status"] == "captured"
    assert expiry.expire(pid) is False and expiry.warn(pid) is False
    assert "payment.expired" not in events_of(pid)


def test_time_travel_is_for_test_keys_only(merchant: dict[str, Any], fake_adyen: Any) -> None:
    from tests.support.connectors import LIVE_CARD, connect

    connect(merchant["merchant_id"], fake_adyen)  # live payments go to a processor connector (the fake Adyen)
    live = merchant["keys"]["live"]["secret"]
    pid = authorize(live, {"amount": 100, "currency": "USD", "card": LIVE_CARD}).data["id"]
    assert advance(live, pid, DAY).status == 404


def test_bad_advance_input_is_a_400(sk: str) -> None:
    pid = authorize(sk).data["id"]
    answer = advance(sk, pid, 0)
    assert answer.status == 400 and answer.error["param"] == "seconds"


def wheel_items() -> list[dict[str, Any]]:
    return [r for r in table_items() if r["pk"].startswith("WHEEL#")]


def executions() -> list[dict[str, Any]]:
    import boto3

    sfn = boto3.client("stepfunctions")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if "Expiry" in m["name"])
    return sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]


def test_new_authorizations_put_their_deadlines_on_the_wheel_with_one_execution_per_bucket(sk: str) -> None:
    from tahsil.kernel import clock
    from tahsil.payments import expiry
    from tests.support.webhooks import invoke_raw, stream_records

    first, second = authorize(sk).data["id"], authorize(sk).data["id"]
    authorize(sk, sale=True)  # a sale needs no timer
    records = [r for r in stream_records() if r["dynamodb"]["Keys"]["pk"]["S"].startswith("EVTS#")]
    assert invoke_raw("ExpiryTimersFunction", {"Records": records}) == {"batchItemFailures": []}
    assert invoke_raw("ExpiryTimersFunction", {"Records": records}) == {"batchItemFailures": []}  # replayed: no-op
    items = wheel_items()
    # only the first deadline of each: the warning (its own event brings the expiry, see below)
    assert sorted(i["sk"] for i in items) == sorted(f"{p}#warn" for p in (first, second))
    warn_at = clock.parse(get(sk, first).data["expires_at"]) - expiry.warning_lead()
    [warn_row] = [i for i in items if i["sk"] == f"{first}#warn"]
    bucket = int(warn_row["pk"].split("#")[1])
    assert 0 <= bucket - warn_at.timestamp() < 60 and bucket % 60 == 0  # the bucket that ends at or after it
    assert warn_row["ttl"] > bucket
    buckets = {int(i["pk"].split("#")[1]) for i in items}
    running = executions()
    # one execution per bucket however many deadlines it holds (both authorizations share their minutes or not)
    assert sorted(e["name"] for e in running) == sorted(f"wheel-60s-{b}" for b in buckets)
    assert all(e["status"] == "RUNNING" for e in running)
    assert expiry.execution_input(bucket)["due_at"] == clock.iso(dt.datetime.fromtimestamp(bucket, dt.UTC))


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch):
    """Move the clock forward for everything that reads it (the sweep, reads, captures)."""
    from tahsil.kernel import clock

    real = clock.now

    def move(seconds: float) -> None:
        monkeypatch.setattr(clock, "now", lambda: real() + dt.timedelta(seconds=seconds))

    return move


def test_the_sweep_warns_then_expires_and_skips_what_was_captured_or_voided(sk: str, later: Any) -> None:
    from tahsil.payments import expiry

    left, captured, voided = (authorize(sk).data["id"] for _ in range(3))
    act("capture", sk, captured, {})
    assert act("void", sk, voided, {"reason": "Order canceled"}).status == 200
    buckets = sorted({b for p in (left, captured, voided) for b in expiry.register(deadlines_of(sk, p))})
    warn_buckets = [b for b in buckets if b < min(buckets) + 3600]
    later(6 * DAY + 120)
    pages = run_wheel(warn_buckets)
    assert sum(p["acted"] for p in pages if p["done"]) == 1  # the warning of the one left authorized
    assert events_of(left) == ["payment.authorized", "payment.authorization_expiring"]
    later(7 * DAY + 120)
    run_wheel(buckets)  # every bucket again (a retried execution): nothing happens twice
    assert events_of(left) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    assert get(sk, left).data["status"] == "expired"
    assert events_of(captured) == ["payment.authorized", "payment.captured"]
    assert events_of(voided) == ["payment.authorized", "payment.voided"]
    assert [t["type"] for t in table_items() if t["pk"].startswith("TXN") and t["payment_id"] == left].count("expiry") == 1


def pump_stream(seen: set[str]) -> None:
    """What Lambda's poller does for ExpiryTimersFunction: the new stream records its template filter passes."""
    from tahsil_local.pollers import passes
    from tahsil_local.template import load
    from tests.support.webhooks import invoke_raw, stream_records

    pattern = load()["Resources"]["ExpiryTimersFunction"]["Properties"]["Events"]["Outbox"]["Properties"][
        "FilterCriteria"]["Filters"]
    fresh = [r for r in stream_records() if r["eventID"] not in seen]
    seen.update(r["eventID"] for r in fresh)
    records = [r for r in fresh if passes(pattern, r)]
    if records:
        assert invoke_raw("ExpiryTimersFunction", {"Records": records}) == {"batchItemFailures": []}


def test_the_warning_registers_the_expiry_and_a_payment_captured_before_it_costs_one_wheel_item(
        sk: str, later: Any) -> None:
    from tahsil.kernel import clock
    from tahsil.payments import expiry

    seen: set[str] = set()
    left, captured = authorize(sk).data["id"], authorize(sk).data["id"]
    act("capture", sk, captured, {})
    pump_stream(seen)
    assert sorted(i["sk"] for i in wheel_items()) == sorted([f"{left}#warn", f"{captured}#warn"])
    warn_buckets = sorted({int(i["pk"].split("#")[1]) for i in wheel_items()})
    later(6 * DAY + 120)
    assert sum(p["acted"] for p in run_wheel(warn_buckets) if p["done"]) == 1  # the captured one is skipped
    assert events_of(left) == ["payment.authorized", "payment.authorization_expiring"]
    pump_stream(seen)  # the warning's event puts the expiry on the wheel; the capture's puts nothing
    rows = {i["sk"]: i for i in wheel_items()}
    assert sorted(rows) == sorted([f"{left}#warn", f"{captured}#warn", f"{left}#expire"])
    expire_bucket = int(rows[f"{left}#expire"]["pk"].split("#")[1])
    expires_at = clock.parse(get(sk, left).data["expires_at"])
    assert 0 <= expire_bucket - expires_at.timestamp() < 60
    assert any(e["name"] == f"wheel-60s-{expire_bucket}" for e in executions())
    later(7 * DAY + 120)
    run_wheel([expire_bucket])
    assert events_of(left) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    assert events_of(captured) == ["payment.authorized", "payment.captured"]
    pump_stream(seen)  # the expiry's event registers nothing more
    assert len(wheel_items()) == 3
    assert expiry.deadlines({"type": "payment.expired", "object": get(sk, left).data}) == []


def test_a_warning_swept_after_the_expiry_has_come_expires_too(sk: str, later: Any) -> None:
    from tahsil.payments import expiry

    seen: set[str] = set()
    pid = authorize(sk).data["id"]
    pump_stream(seen)
    [warn_row] = wheel_items()
    later(8 * DAY)  # the warning's bucket is swept late, past the expiry
    run_wheel([int(warn_row["pk"].split("#")[1])])
    assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    pump_stream(seen)  # the warning reported the payment expired: no expiry registered
    assert [i["sk"] for i in wheel_items()] == [f"{pid}#warn"]
    assert expiry.register([{"kind": "payment", "id": pid, "action": "expire", "at": "2020-01-01T00:00:00Z"}]) == []


def deadlines_of(sk: str, pid: str) -> list[dict[str, str]]:
    from tahsil.payments import expiry

    payment = get(sk, pid).data
    return expiry.deadlines({"type": "payment.authorized", "object": payment})


def test_a_bucket_larger_than_one_page_is_swept_to_the_end(sk: str, later: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.payments import expiry

    monkeypatch.setenv("EXPIRY_SWEEP_PAGE_SIZE", "2")
    monkeypatch.setenv("EXPIRY_WHEEL_SHARDS", "2")
    monkeypatch.setenv("EXPIRY_BUCKET_SECONDS", "3600")  # one bucket holds them all
    pids = [authorize(sk).data["id"] for _ in range(9)]
    buckets = {b for p in pids for b in expiry.register(
        [d for d in deadlines_of(sk, p) if d["action"] == "expire"])}
    assert len(buckets) == 1 or len(buckets) == 2  # the nine may straddle an hour boundary
    later(8 * DAY)
    pages = run_wheel(sorted(buckets))
    assert len(pages) >= 9 // 2 + 1  # page by page, shard by shard
    assert sum(p["acted"] for p in pages if p["done"]) == 9 and sum(p["seen"] for p in pages if p["done"]) == 9
    for pid in pids:
        assert get(sk, pid).data["status"] == "expired"
        assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]


def test_a_deadline_whose_bucket_has_already_ended_is_applied_when_it_is_registered(sk: str, later: Any) -> None:
    from tahsil.payments import expiry

    pid = authorize(sk).data["id"]
    deadlines = deadlines_of(sk, pid)
    later(8 * DAY)  # the stream record arrives after both buckets have been swept
    expiry.register(deadlines)
    assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    expiry.register(deadlines)  # replayed: nothing twice
    assert events_of(pid).count("payment.expired") == 1


def test_an_intent_expires_by_the_sweep_of_its_bucket_and_a_paid_one_is_skipped(sk: str, later: Any) -> None:
    from tahsil.payments import expiry
    from tests.support.intents import confirm, create

    left, paid = create(sk).data, create(sk).data
    assert confirm(paid["id"], paid["client_secret"]).status == 200
    buckets = {b for intent in (left, paid) for b in expiry.register(
        expiry.deadlines({"type": "payment_intent.created", "object": intent}))}
    later(2 * 3600)
    pages = run_wheel(sorted(buckets))
    assert sum(p["acted"] for p in pages if p["done"]) == 1
    kinds = [payload_of(r)["type"] for r in table_items() if r["pk"].startswith("EVT")]
    assert kinds.count("payment_intent.expired") == 1


def test_a_capture_racing_the_sweep_has_exactly_one_winner(sk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.kernel import clock
    from tahsil.payments import expiry
    from tahsil.store import dal
    from tests.support.webhooks import card_number

    monkeypatch.setenv("EXPIRY_BUCKET_SECONDS", "1")
    monkeypatch.setattr(expiry, "SWEEP_THREADS", 2)
    outcomes: list[str] = []
    for trial in range(4):
        pids = [authorize(sk, {"amount": 500, "currency": "USD", "card": {
            "number": card_number(trial * 10 + n), "exp_month": 12, "exp_year": 2030, "cvv": "123"}}).data["id"]
            for n in range(6)]
        boundary = clock.now().replace(microsecond=0) + dt.timedelta(seconds=2)
        for pid in pids:
            dal.update(dal.payments_table(), f"PAY#{pid}", "PAY", "SET expires_at = :at", vals=dal.values(at=clock.iso(boundary)))
        [bucket] = expiry.register([{"kind": "payment", "id": pid, "action": "expire", "at": clock.iso(boundary)}
                                    for pid in pids])
        assert bucket == int(boundary.timestamp())
        captures: dict[str, int] = {}

        def capture(pid: str, lead: float) -> None:
            time.sleep(max(0.0, (boundary - clock.now()).total_seconds() - lead))  # noqa: B023
            captures[pid] = act("capture", sk, pid, {}).status  # noqa: B023 - joined before the loop moves on

        threads = [threading.Thread(target=capture, args=(pid, 0.004 * n)) for n, pid in enumerate(pids)]
        threads.append(threading.Thread(target=run_wheel, args=([bucket],)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        for pid in pids:
            final, kinds = get(sk, pid).data["status"], events_of(pid)
            assert kinds.count("payment.captured") + kinds.count("payment.expired") == 1
            if final == "captured":
                assert captures[pid] == 200 and "payment.expired" not in kinds
            else:
                assert final == "expired" and captures[pid] == 410 and "payment.captured" not in kinds
            outcomes.append(final)
    assert len(outcomes) == 24


def test_a_capture_racing_the_expiry_has_exactly_one_winner_in_50_trials(sk: str) -> None:
    from tahsil.kernel import clock
    from tahsil.payments import expiry
    from tahsil.store import dal

    outcomes = []
    from tests.support.webhooks import card_number

    for trial in range(50):
        pid = authorize(sk, {"amount": 500, "currency": "USD", "card": {"number": card_number(trial), "exp_month": 12,
                                                                          "exp_year": 2030, "cvv": "123"}}).data["id"]
        boundary = clock.now().replace(microsecond=0) + __import__("datetime").timedelta(seconds=1)
        dal.update(dal.payments_table(), f"PAY#{pid}", "PAY", "SET expires_at = :at", vals=dal.values(at=clock.iso(boundary)))
        results: dict[str, Any] = {}

        def capture() -> None:
            time.sleep(max(0.0, (boundary - clock.now()).total_seconds() - 0.002))  # noqa: B023
            results["capture"] = act("capture", sk, pid, {}).status  # noqa: B023 - joined before the loop moves on

        def expire() -> None:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if expiry.expire(pid):  # noqa: B023
                    results["expire"] = True  # noqa: B023
                    return
                if get(sk, pid).data["status"] == "captured":  # noqa: B023
                    return
                time.sleep(0.001)

        threads = [threading.Thread(target=capture), threading.Thread(target=expire)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        final = get(sk, pid).data["status"]
        kinds = events_of(pid)
        if final == "captured":
            assert results["capture"] == 200 and "expire" not in results and "payment.expired" not in kinds
        else:
            assert final == "expired" and results.get("expire") and results["capture"] == 410
            assert "payment.captured" not in kinds
        assert kinds.count("payment.captured") + kinds.count("payment.expired") == 1
        outcomes.append(final)
    assert len(outcomes) == 50


# ------------------------------------------------------------------ payment intents


def advance_intent(key: str, intent_id: str, seconds: int):
    return invoke("AdvanceIntentClockFunction", load_event("test-helpers-advance-intent", key=key, path_id=intent_id,
                                                           body={"seconds": seconds}))


def test_an_intent_expires_after_an_hour_once_and_then_refuses_confirms(sk: str) -> None:
    from tahsil.payments import intents
    from tests.support.intents import confirm, create

    created = create(sk).data
    assert advance_intent(sk, created["id"], 1800).data["status"] == "created"
    assert advance_intent(sk, created["id"], 1801).data["status"] == "expired"
    assert intents.expire(created["id"]) is False  # the real timer later finds nothing to do
    kinds = [payload_of(r)["type"] for r in table_items() if r["pk"].startswith("EVT")]
    assert kinds.count("payment_intent.expired") == 1
    answer = confirm(created["id"], created["client_secret"])
    assert answer.status == 410 and answer.error["code"] == "INTENT_EXPIRED"


def test_a_paid_intent_is_left_alone_by_its_timer(sk: str) -> None:
    from tahsil.payments import intents
    from tests.support.intents import confirm, create

    created = create(sk).data
    assert confirm(created["id"], created["client_secret"]).status == 200
    assert advance_intent(sk, created["id"], 7200).data["status"] == "succeeded"
    assert intents.expire(created["id"]) is False


# ------------------------------------------------------------------ deadlines that could not be applied


class Failing:
    """dal.transact, failing the writes to chosen payments: ``left[pid]`` more times (-1: for ever)."""

    def __init__(self, kind: str) -> None:
        from tahsil.store import dal

        self.kind, self.real, self.left = kind, dal.transact, {}
        self.failed = 0

    def error(self) -> Exception:
        from botocore.exceptions import ClientError

        from tahsil.store import dal

        if self.kind == "conflict":
            return dal.ConditionFailed(None)  # a TransactionConflict, as dal.transact reports it
        if self.kind == "throttle":
            return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                               "TransactWriteItems")
        return RuntimeError("the payments table is having a bad day")

    def __call__(self, actions: list[dict[str, Any]]) -> None:
        import json

        text = json.dumps(actions, default=str)
        for pid, n in self.left.items():
            if n != 0 and f"PAY#{pid}" in text:
                self.left[pid] = n - 1
                self.failed += 1
                raise self.error()
        return self.real(actions)


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch):
    from tahsil.store import dal

    monkeypatch.setenv("EXPIRY_RETRY_BASE_SECONDS", "0")  # no backoff waits in tests: the order of events is the same

    def install(kind: str) -> Failing:
        fake = Failing(kind)
        monkeypatch.setattr(dal, "transact", fake)
        return fake

    return install


def retry_queue_messages(url: str) -> list[dict[str, Any]]:
    import boto3

    return boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                               VisibilityTimeout=0).get("Messages", [])


def drain_retries(rounds: int = 50) -> list[dict[str, Any]]:
    """What Lambda's poller does for ExpiryRetryFunction: batches of ExpiryRetryQueue, failed messages kept."""
    import os

    import boto3

    from tests.support.webhooks import invoke_raw

    sqs, url = boto3.client("sqs"), os.environ["EXPIRY_RETRY_QUEUE_URL"]
    answers = []
    for _ in range(rounds):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            break
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                              "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                              "awsRegion": "us-east-1"} for m in messages]}
        answer = invoke_raw("ExpiryRetryFunction", event)
        answers.append(answer)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return answers


def queue_depth(url: str) -> int:
    import boto3

    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                                   "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def expiry_count(pid: str) -> int:
    return [t["type"] for t in table_items() if t["pk"].startswith("TXN") and t["payment_id"] == pid].count("expiry")


@pytest.mark.parametrize(("kind", "times"), [("conflict", 20), ("throttle", 3), ("error", 5)])
def test_a_deadline_that_could_not_be_applied_is_retried_until_done(
        sk: str, later: Any, failing: Any, aws_env: dict[str, str], kind: str, times: int) -> None:
    from tahsil.payments import expiry

    pid, other = authorize(sk).data["id"], authorize(sk).data["id"]
    buckets = sorted({b for p in (pid, other) for b in expiry.register(
        [d for d in deadlines_of(sk, p) if d["action"] == "expire"])})
    fake = failing(kind)
    fake.left[pid] = times
    later(8 * DAY)
    pages = run_wheel(buckets)
    assert sum(p["acted"] for p in pages if p["done"]) == 1  # the other one: one failure holds nothing up
    assert sum(p["deferred"] for p in pages if p["done"]) == 1  # "could not", not "nothing to do"
    assert get(sk, other).data["status"] == "expired" and expiry_count(other) == 1
    assert events_of(pid) == ["payment.authorized"]
    assert queue_depth(aws_env["ExpiryRetryQueue"]) == 1
    answers = drain_retries()
    assert len(answers) >= (2 if kind == "conflict" else times)  # conflicts: 8 a try (warn's own retries)
    assert fake.left[pid] == 0
    assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    assert get(sk, pid).data["status"] == "expired" and expiry_count(pid) == 1
    assert queue_depth(aws_env["ExpiryRetryQueue"]) == 0 and queue_depth(aws_env["ExpiryDLQ"]) == 0
    run_wheel(buckets)  # the bucket swept again (a retried execution): nothing twice, nothing deferred
    assert expiry_count(pid) == 1 and queue_depth(aws_env["ExpiryRetryQueue"]) == 0


def test_nothing_to_do_is_not_a_failure(sk: str, later: Any, failing: Any, aws_env: dict[str, str]) -> None:
    from tahsil.payments import expiry

    captured = authorize(sk).data["id"]
    act("capture", sk, captured, {})
    buckets = expiry.register(deadlines_of(sk, captured))
    later(8 * DAY)
    pages = run_wheel(buckets)
    assert sum(p["acted"] + p["deferred"] for p in pages if p["done"]) == 0
    assert expiry.act("payment", captured, "expire") is False
    assert queue_depth(aws_env["ExpiryRetryQueue"]) == 0


def test_a_deadline_that_keeps_failing_lands_in_the_alarmed_dlq_and_is_redriven(
        sk: str, later: Any, failing: Any, aws_env: dict[str, str]) -> None:
    from tahsil.console import redrive
    from tahsil.payments import expiry
    from tahsil_local.template import load

    pid = authorize(sk).data["id"]
    buckets = expiry.register([d for d in deadlines_of(sk, pid) if d["action"] == "expire"])
    fake = failing("conflict")
    fake.left[pid] = -1  # for ever
    later(8 * DAY)
    run_wheel(buckets)
    answers = drain_retries()
    resources = load()["Resources"]
    max_receives = resources["ExpiryRetryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    assert len(answers) == max_receives  # each receive failed, then SQS moved it
    assert queue_depth(aws_env["ExpiryRetryQueue"]) == 0
    # the metric ExpiryDLQDepthAlarm watches: the DLQ's visible messages
    alarm = resources["ExpiryDLQDepthAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ExpiryDLQ", "QueueName"]}
    [parked] = retry_queue_messages(aws_env["ExpiryDLQ"])
    assert json_of(parked["Body"]) == {"kind": "payment", "id": pid, "action": "expire"}
    assert get(sk, pid).data["status"] == "expired" and events_of(pid) == ["payment.authorized"]  # read-time only
    # fixed: `tahsil ops redrive` sends it back to its source queue, and the worker applies it once
    fake.left[pid] = 0
    source = redrive.source_queue_of(aws_env["ExpiryDLQ"], [aws_env["ExpiryRetryQueue"]])
    assert redrive.move_messages(aws_env["ExpiryDLQ"], source).moved == 1
    drain_retries()
    assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]
    assert expiry_count(pid) == 1
    assert queue_depth(aws_env["ExpiryDLQ"]) == 0 and queue_depth(aws_env["ExpiryRetryQueue"]) == 0


def json_of(body: str) -> Any:
    import json

    return json.loads(body)


def test_a_page_the_state_machine_handed_over_is_swept_on_by_the_retry_worker(
        sk: str, later: Any, failing: Any, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import boto3

    from tahsil.payments import expiry

    monkeypatch.setenv("EXPIRY_SWEEP_PAGE_SIZE", "2")
    monkeypatch.setenv("EXPIRY_BUCKET_SECONDS", "3600")
    pids = [authorize(sk).data["id"] for _ in range(5)]
    buckets = sorted({b for p in pids for b in expiry.register(
        [d for d in deadlines_of(sk, p) if d["action"] == "expire"])})
    later(8 * DAY)
    for bucket in buckets:
        # what HandOverToRetryQueue sends after Sweep failed all its retries: Sweep's input, and the error
        state = {**expiry.execution_input(bucket), "error": {"Error": "Lambda.ServiceException", "Cause": "..."}}
        boto3.client("sqs").send_message(QueueUrl=aws_env["ExpiryRetryQueue"], MessageBody=json.dumps(state))
    drain_retries()  # a page per message, each handing the next one on
    for pid in pids:
        assert get(sk, pid).data["status"] == "expired" and expiry_count(pid) == 1
    assert queue_depth(aws_env["ExpiryRetryQueue"]) == 0


def test_the_state_machine_hands_a_failed_page_to_the_retry_queue() -> None:
    import json

    from tests.support.lambdas import ROOT

    machine = json.loads((ROOT / "statemachines/expiry.asl.json").read_text())["States"]
    [catch] = machine["Sweep"]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["ResultPath"] == "$.error"  # keeps the state to resume
    hand_over = machine[catch["Next"]]
    assert hand_over["Resource"] == "arn:aws:states:::sqs:sendMessage"
    assert hand_over["Parameters"] == {"QueueUrl": "${ExpiryRetryQueueUrl}", "MessageBody.$": "$"}


# ------------------------------------------------------------------ changing the number of shards


def started_executions() -> list[dict[str, Any]]:
    """The inputs of the wheel's executions as started (not as the current parameters would start them)."""
    import json

    import boto3

    sfn = boto3.client("stepfunctions")
    return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) | {"name": e["name"]}
            for e in executions()]


def run_started() -> list[dict[str, Any]]:
    """What every started execution does once its wait is over, with the input it was started with."""
    from tahsil.payments import expiry

    pages = []
    for state in started_executions():
        state = {k: v for k, v in state.items() if k != "name"}
        while not state["done"]:
            state = expiry.sweep(state)
            pages.append(state)
    return pages


@pytest.mark.parametrize("after", [8, 2, 1])
def test_a_wheel_written_under_4_shards_is_fully_swept_after_the_count_changes(
        sk: str, later: Any, monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """Two buckets: in the first, 4 shards wrote first (then the new count, then an old container with 4
    again); in the second, the new count wrote first and an old container with 4 after it. Each time the
    later writer puts deadlines in shards the first one's execution would not read."""
    from tahsil.payments import expiry

    monkeypatch.setenv("EXPIRY_BUCKET_SECONDS", "3600")
    pool = [authorize(sk, {"amount": 100 + n, "currency": "USD", "card": card(n)}).data["id"] for n in range(20)]

    def take(n: int, shards: int, beyond: int) -> list[str]:
        """n payments, those whose shard under ``shards`` is one a ``beyond``-shard sweep misses first."""
        chosen = sorted(pool, key=lambda p: expiry._shard(p, shards) < beyond)[:n]
        for p in chosen:
            pool.remove(p)
        return chosen

    def register(pids: list[str], shards: int, hours: int) -> None:
        monkeypatch.setenv("EXPIRY_WHEEL_SHARDS", str(shards))  # a container deployed with this parameter
        shifted = [{**d, "at": clock.iso(clock.parse(d["at"]) + dt.timedelta(hours=hours))}
                   for p in pids for d in deadlines_of(sk, p) if d["action"] == "expire"]
        expiry.register(shifted)

    from tahsil.kernel import clock

    first = take(4, 4, 4)
    grown = take(5, after, 4)  # under 8 shards: some in shards 4-7
    shrunk = take(5, 4, after)  # under 4 shards after a bucket was started under 2 (or 1): some in shards 2-3
    register(first, 4, 0)
    register(grown, after, 0)
    register(take(2, 4, 4), 4, 0)  # an old container, still running during the deploy
    register(take(2, after, 4), after, 2)
    register(shrunk, 4, 2)
    assert (after <= 4 or any(expiry._shard(p, after) >= 4 for p in grown)) and (
        after >= 4 or any(expiry._shard(p, 4) >= after for p in shrunk)), "the payments drawn exercise no missed shard"
    pids = [i["sk"].rsplit("#", 1)[0] for i in wheel_items()]
    assert len(pids) == 18
    names = {s["name"] for s in started_executions()}
    buckets = {int(i["pk"].split("#")[1]) for i in wheel_items()}
    assert len(buckets) >= 2  # (more if the payments straddle an hour boundary)
    assert names <= {expiry.execution_name(b, n) for b in buckets for n in {4, after}}  # one per bucket and count
    assert {expiry.execution_name(b, 4) for b in buckets} & names and {expiry.execution_name(b, after) for b in buckets} & names
    later(8 * DAY)
    pages = run_started()
    assert sum(p["acted"] for p in pages if p["done"]) == 18  # every deadline applied, each once
    for pid in pids:
        assert get(sk, pid).data["status"] == "expired" and expiry_count(pid) == 1, pid
        assert events_of(pid) == ["payment.authorized", "payment.authorization_expiring", "payment.expired"]


def card(n: int) -> dict[str, Any]:
    from tests.support.webhooks import card_number

    return {"number": card_number(900 + n), "exp_month": 12, "exp_year": 2030, "cvv": "123"}


def test_one_shard_keeps_the_execution_names_it_always_had() -> None:
    from tahsil.payments import expiry

    assert expiry.execution_name(1_700_000_040, 1) == f"wheel-{expiry.bucket_seconds()}s-1700000040"
    assert expiry.execution_name(1_700_000_040, 4).endswith("-1700000040-x4")


def test_moto_runs_the_hand_over_of_a_page_that_failed_every_retry(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The template's own definition, run by moto's interpreter (its retries cut to none: they only wait)."""
    import json
    import types

    import boto3
    from moto.core.config import default_user_config

    from tahsil.payments import expiry
    from tahsil_local import aws as local_aws
    from tahsil_local import pollers
    from tahsil_local.runtime import FunctionError
    from tahsil_local.template import load
    from tests.support.lambdas import ROOT

    class Broken:  # a function pool as tahsil_local.pollers invokes it, whose every invocation fails
        calls = 0
        fn = types.SimpleNamespace(logical_id="ExpiryFunction")

        def invoke(self, payload: dict[str, Any], *, request_id: str | None = None) -> Any:
            Broken.calls += 1
            raise FunctionError({"errorType": "ProvisionedThroughputExceededException", "errorMessage": "slow down"})

    monkeypatch.setitem(default_user_config, "lambda", {"use_docker": False})
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    from moto.awslambda_simple.models import LambdaSimpleBackend

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", LambdaSimpleBackend.invoke)  # restored after the test
    pollers.route_lambda_invocations({"ExpiryFunction": Broken()})  # type: ignore[dict-item]
    definition = (ROOT / "statemachines/expiry.asl.json").read_text().replace('"MaxAttempts": 8', '"MaxAttempts": 0')
    props = load()["Resources"]["ExpiryStateMachine"]["Properties"]
    for name, value in props["DefinitionSubstitutions"].items():
        definition = definition.replace("${" + name + "}", local_aws.resolve(value, aws_env))
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name="expiry-catch", definition=definition,
                                       roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]
    state = expiry.execution_input(1_700_000_040, 4)  # long ended: no wait
    run = sfn.start_execution(stateMachineArn=machine, name="wheel-catch", input=json.dumps(state))["executionArn"]
    deadline = time.monotonic() + 20
    while sfn.describe_execution(executionArn=run)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sfn.describe_execution(executionArn=run)["status"] == "SUCCEEDED" and Broken.calls == 1
    [message] = retry_queue_messages(aws_env["ExpiryRetryQueue"])
    body = json.loads(message["Body"])
    assert {k: v for k, v in body.items() if k != "error"} == state  # where to sweep on from
    assert body["error"]["Error"] == "ProvisionedThroughputExceededException"
