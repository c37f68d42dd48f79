"""Webhook deliveries written lean (issue 15): the first attempt creates the delivery row, a batch's attempts are
recorded in one transaction with the delivery counters, and every delivery is recorded and counted exactly once,
whatever is redelivered or crashes in between. The overview reads the counters in a constant number of calls."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import boto3
import pytest

from tests.support.console import call
from tests.support.lambdas import invoke, load_event
from tests.support.payments import act, authorize
from tests.support.webhooks import Receiver, create_endpoint, invoke_raw, stream_records


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, aws_env: Any) -> Any:
    monkeypatch.setenv("TAHSIL_LOCAL_RUNTIME", "true")  # test mode may target http://127.0.0.1
    return aws_env


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.stop()


def fan_out() -> list[dict[str, Any]]:
    """The stream to the fan-out; answer the delivery queue's messages as Lambda's SQS event records (not deleted)."""
    from tahsil_local.pollers import passes
    from tahsil_local.template import load

    pattern = load()["Resources"]["WebhookFanoutFunction"]["Properties"]["Events"]["Outbox"]["Properties"][
        "FilterCriteria"]["Filters"]
    records = [r for r in stream_records() if passes(pattern, r)]
    if records:
        assert invoke_raw("WebhookFanoutFunction", {"Records": records}) == {"batchItemFailures": []}
    stream_records_clear()
    sqs = boto3.client("sqs")
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=os.environ["DELIVERY_QUEUE_URL"], MaxNumberOfMessages=10,
                                       VisibilityTimeout=0).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in {o["messageId"] for o in out}]
        if not fresh:
            break
        out += [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {},
                 "messageAttributes": {}, "eventSource": "aws:sqs"} for m in fresh]
        for m in fresh:
            sqs.delete_message(QueueUrl=os.environ["DELIVERY_QUEUE_URL"], ReceiptHandle=m["ReceiptHandle"])
    return out


def stream_records_clear() -> None:
    from moto.dynamodb.models import dynamodb_backends

    from tahsil.store import dal

    dynamodb_backends["123456789012"]["us-east-1"].tables[dal.payments_table()].stream_shard.items.clear()


def deliver(records: list[dict[str, Any]]) -> dict[str, Any]:
    return invoke_raw("WebhookDeliverFunction", {"Records": records})


def counted(merchant_id: str) -> dict[str, int]:
    """The delivery counters' totals (kept per minute only)."""
    from tahsil.store import counters, dal

    now = dt.datetime.now(dt.UTC)
    scope = counters.delivery_scope(merchant_id, "test")
    assert dal.query_partition(dal.payments_table(), counters.partition(scope, counters.HOUR), "") == []
    items = dal.query_partition(dal.payments_table(), counters.partition(scope, counters.MINUTE), "")
    assert all(int(i["ttl"]) > now.timestamp() + 30 * 86400 for i in items)
    return {k: sum(int(i.get(k, 0)) for i in items) for k in ("n", "at", "dd", "df")}


def partition(event_id: str) -> list[dict[str, Any]]:
    """The event's delivery partition: its delivery and attempt rows."""
    from tahsil.store import dal

    return dal.query_partition(dal.payments_table(), f"EVT#{event_id}", "")


def event_item(merchant_id: str, event_id: str) -> dict[str, Any]:
    """The event row, in its merchant's test-mode partition."""
    from tahsil.store import dal

    item = dal.get(dal.payments_table(), f"EVTS#{merchant_id}#test", event_id)
    assert item is not None
    return item


def only_event_id() -> str:
    from tahsil.store import dal

    rows = [dal.load(i) for i in dal._ddb().scan(TableName=dal.payments_table())["Items"]]
    [event] = [r for r in rows if r["pk"].startswith("EVTS#")]
    assert event["sk"] == event["id"] and "gsi1pk" not in event  # in no index
    return event["id"]


def test_a_delivered_event_writes_one_row_in_no_index_and_nothing_on_the_event(local: Any, merchant: dict[str, Any],
                                                                              receiver: Receiver) -> None:
    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url, ["payment.authorized"]).data
    authorize(key)
    event_id = only_event_id()
    before = event_item(merchant["merchant_id"], event_id)
    assert deliver(fan_out()) == {"batchItemFailures": []}
    rows = partition(event_id)
    assert [r["sk"] for r in rows] == [f"DLV#{endpoint['id']}"]  # no attempt row: it delivered
    [row] = rows
    assert event_item(merchant["merchant_id"], event_id) == before  # the event row is not written by its delivery
    assert "gsi1pk" not in row and row["status"] == "delivered" and row["attempts"] == 1 and row["of"] == 1
    shown = invoke("GetEventFunction", load_event("events-get", key=key, path_id=event_id)).data
    assert shown["delivery"] == {"status": "delivered", "endpoints": 1, "finished": 1, "failed": 0}
    assert counted(merchant["merchant_id"]) == {"n": 1, "at": 1, "dd": 1, "df": 0}


def test_a_redelivered_first_attempt_message_is_sent_recorded_and_counted_once(local: Any, merchant: dict[str, Any],
                                                                               receiver: Receiver) -> None:
    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url)
    authorize(key)
    records = fan_out()
    assert deliver(records) == {"batchItemFailures": []}
    assert deliver(records) == {"batchItemFailures": []}  # SQS delivers it again: at least once
    assert len(receiver.received) == 1
    assert counted(merchant["merchant_id"]) == {"n": 1, "at": 1, "dd": 1, "df": 0}


def test_a_crash_after_the_record_counts_once_and_still_starts_the_retries(local: Any, merchant: dict[str, Any],
                                                                           receiver: Receiver,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url)
    receiver.default = 503
    authorize(key)
    event_id = only_event_id()
    records = fan_out()
    real = dal.transact

    def commit_then_crash(actions: list[dict[str, Any]]) -> None:
        real(actions)
        raise RuntimeError("the Lambda died right after committing")

    monkeypatch.setattr(dal, "transact", commit_then_crash)
    with pytest.raises(RuntimeError):
        deliver(records)
    monkeypatch.setattr(dal, "transact", real)
    sfn = boto3.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []  # it died before starting them
    assert deliver(records) == {"batchItemFailures": []}  # the message comes back
    assert len(receiver.received) == 1  # recorded: not sent again...
    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]  # ...and the retries start
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])["attempt"] == 2
    assert deliver(records) == {"batchItemFailures": []}
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1
    assert sorted(r["sk"] for r in partition(event_id))[-1].endswith("#000#001")
    assert counted(merchant["merchant_id"]) == {"n": 1, "at": 1, "dd": 0, "df": 0}


def test_a_crash_before_the_record_sends_again_and_counts_once(local: Any, merchant: dict[str, Any],
                                                              receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url)
    authorize(key)
    records = fan_out()

    def crash(actions: list[dict[str, Any]]) -> None:
        raise RuntimeError("the Lambda died after the POST, before recording it")

    real = dal.transact
    monkeypatch.setattr(dal, "transact", crash)
    with pytest.raises(RuntimeError):
        deliver(records)
    monkeypatch.setattr(dal, "transact", real)
    assert deliver(records) == {"batchItemFailures": []}
    assert len(receiver.delivered()) == 2  # at least once: the receiver dedupes on webhook-id
    assert len({r["headers"]["webhook-id"] for r in receiver.delivered()}) == 1
    assert counted(merchant["merchant_id"]) == {"n": 1, "at": 1, "dd": 1, "df": 0}


def test_a_batch_of_first_attempts_is_one_transaction_and_each_counts_once(local: Any, merchant: dict[str, Any],
                                                                          receiver: Receiver,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url).data
    payment = authorize(key).data
    act("capture", key, payment["id"])
    records = fan_out()
    assert len(records) == 2 and all(json.loads(r["body"])["of"] == 1 for r in records)
    calls: list[int] = []
    real = dal.transact
    monkeypatch.setattr(dal, "transact", lambda actions: calls.append(len(actions)) or real(actions))
    assert deliver(records) == {"batchItemFailures": []}
    assert calls == [3]  # two delivery rows and one counter item (their minute)
    assert counted(merchant["merchant_id"]) == {"n": 2, "at": 2, "dd": 2, "df": 0}
    data = call("overview-get", key, query={}).data["deliveries"]
    assert data["endpoints"] == [{"endpoint_id": endpoint["id"], "url": receiver.url, "total": 2, "delivered": 2,
                                  "failed": 0}]
    assert data["latest_response"]["status_code"] == 200 and data["success_rate"] == 100.0


def test_the_overview_reads_delivery_counters_in_a_constant_number_of_calls(local: Any, merchant: dict[str, Any],
                                                                          receiver: Receiver,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import counters, dal

    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url)
    authorize(key)
    assert deliver(fan_out()) == {"batchItemFailures": []}
    calls: list[str] = []
    real = dal._ddb

    class Counting:
        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(self.client, name)

    monkeypatch.setattr(dal, "_ddb", lambda: Counting(real()))

    def deliveries() -> tuple[dict[str, Any], int]:
        calls.clear()
        data = call("overview-get", key, query={}).data
        return data["deliveries"], len([c for c in calls if c not in ("exceptions",)])

    first, first_calls = deliveries()
    assert (first["total"], first["delivered"], first["attempts"]) == (1, 1, 1)
    # 40 more deliveries in the same hour, counted the way the delivery path counts them
    now = dt.datetime.now(dt.UTC)
    scope = counters.delivery_scope(merchant["merchant_id"], "test")
    units = [counters.Unit(actions=[], scope=scope, moment=now - dt.timedelta(minutes=i % 3), ttl=int(now.timestamp()) + 3600,
                           counts={"n": 1, "at": 2, "dd": 1 if i % 4 else 0, "df": 0 if i % 4 else 1})
             for i in range(40)]
    assert all(counters.commit(dal.payments_table(), [u], resolutions=(counters.MINUTE,))[0] for u in units)
    more, more_calls = deliveries()
    assert more["total"] == 41 and more["delivered"] == 31 and more["failed"] == 10 and more["attempts"] == 81
    assert more_calls == first_calls  # the same calls, whatever the number of deliveries


def test_the_delivery_status_filter_and_recover_follow_each_outcome(local: Any, merchant: dict[str, Any],
                                                                   receiver: Receiver) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url, ["payment.authorized"]).data

    def listed(status: str) -> list[str]:
        answer = invoke("ListEventsFunction", load_event("events-list", key=key, query={"delivery_status": status}))
        assert answer.status == 200, answer.body
        return [e["id"] for e in answer.data["events"]]

    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    payment = authorize(key).data
    authorized = only_event_id()
    assert listed("pending") == [authorized] and listed("delivered") == []
    receiver.default = 500
    records = fan_out()
    act("capture", key, payment["id"])  # nobody subscribes to payment.captured
    records += fan_out()
    assert deliver(records) == {"batchItemFailures": []}
    captured = next(e for e in (r["id"] for r in dal.query_partition(dal.payments_table(),
                                                                     f"EVTS#{merchant['merchant_id']}#test", ""))
                    if e != authorized)
    assert listed("no_endpoints") == [captured] and listed("pending") == [authorized]
    state = {"event_id": authorized, "endpoint_id": endpoint["id"], "round": 0, "attempt": 2, "schedule": [1],
             "wait_seconds": 1}
    assert invoke_raw("WebhookRetryFunction", state)["outcome"] == "failed"  # the last attempt of its schedule
    assert listed("failed") == [authorized] and listed("pending") == [] and listed("delivered") == []
    assert event_item(merchant["merchant_id"], authorized)["dlv_failed"] == {endpoint["id"]}
    assert counted(merchant["merchant_id"]) == {"n": 1, "at": 2, "dd": 0, "df": 1}

    receiver.default = 200
    recovered = invoke("RecoverWebhookEndpointFunction", load_event(
        "webhook-endpoints-recover", key=key, path_id=endpoint["id"], body={"since": started.isoformat()}))
    assert recovered.status == 202 and recovered.data["redelivered_events"] == [authorized], recovered.body
    assert listed("pending") == [authorized] and listed("failed") == []
    assert deliver(fan_out()) == {"batchItemFailures": []}
    assert listed("delivered") == [authorized]
    assert "dlv_failed" not in event_item(merchant["merchant_id"], authorized)
    log = invoke("ListEventDeliveriesFunction", load_event("events-deliveries", key=key, path_id=authorized)).data
    [delivery] = log["deliveries"]
    assert [(t["round"], t["number"], t["status_code"]) for t in delivery["history"]] == [(0, 1, 500), (0, 2, 500), (1, 1, 200)]
    assert counted(merchant["merchant_id"]) == {"n": 2, "at": 3, "dd": 1, "df": 1}
    page = call("webhook-endpoints-deliveries", key, path_id=endpoint["id"], query={}).data
    assert [(d["event_id"], d["status"], d["round"]) for d in page["deliveries"]] == [(authorized, "delivered", 1)]


def test_an_endpoints_log_walks_a_bounded_number_of_events_and_its_cursor_goes_on(
        local: Any, merchant: dict[str, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.webhooks import deliveries

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url, ["payment.captured"]).data
    payment = authorize(key).data
    act("capture", key, payment["id"])  # the oldest two events: authorized (not for this endpoint), captured
    for _ in range(3):
        authorize(key)  # three newer events this endpoint never gets
    assert deliver(fan_out()) == {"batchItemFailures": []}
    monkeypatch.setattr(deliveries, "MAX_EVENTS", 2)
    pages, found, cursor = 0, [], None
    while True:  # five events, two walked per page: three pages, the captured delivery on one of them
        query = {"limit": "5", **({"starting_after": cursor} if cursor else {})}
        page = call("webhook-endpoints-deliveries", key, path_id=endpoint["id"], query=query).data
        pages += 1
        found += page["deliveries"]
        if not page["has_more"]:
            assert page["next_starting_after"] is None
            break
        cursor = page["next_starting_after"]
        assert cursor.startswith("evt_")
    assert pages == 3
    [row] = found
    assert row["event_type"] == "payment.captured" and row["status"] == "delivered"


def test_the_events_list_pages_through_a_delivery_status_filter(local: Any, merchant: dict[str, Any],
                                                                 receiver: Receiver) -> None:
    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url, ["payment.authorized"])
    for _ in range(3):
        payment = authorize(key).data
        act("capture", key, payment["id"])  # no endpoint: in between the authorized events
    assert deliver(fan_out()) == {"batchItemFailures": []}

    def page(**query: str) -> dict[str, Any]:
        answer = invoke("ListEventsFunction", load_event("events-list", key=key, query={"delivery_status": "delivered",
                                                                                       "limit": "2", **query}))
        assert answer.status == 200, answer.body
        return answer.data

    first = page()
    assert len(first["events"]) == 2 and first["has_more"] is True
    assert all(e["type"] == "payment.authorized" and e["delivery"]["status"] == "delivered" for e in first["events"])
    rest = page(starting_after=first["next_starting_after"])
    assert len(rest["events"]) == 1 and rest["has_more"] is False
    everything = invoke("ListEventsFunction", load_event("events-list", key=key, query={"limit": "10"})).data["events"]
    assert sorted(e["delivery"]["status"] for e in everything) == ["delivered"] * 3 + ["no_endpoints"] * 3
    assert [e["delivery"]["endpoints"] for e in everything if e["type"] == "payment.captured"] == [0, 0, 0]


def test_a_batchs_attempts_run_side_by_side(local: Any, merchant: dict[str, Any]) -> None:
    """Each attempt may wait up to 15 s on a slow endpoint; ten in a row would outlast the function's timeout.
    The receiver answers 200 only when two requests are in flight at once (a barrier), 500 otherwise."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    barrier = threading.Barrier(2, timeout=5)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            try:
                barrier.wait()
                status = 200
            except threading.BrokenBarrierError:
                status = 500
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        key = merchant["keys"]["test"]["secret"]
        create_endpoint(key, f"http://127.0.0.1:{server.server_address[1]}/hooks")
        payment = authorize(key).data
        act("capture", key, payment["id"])
        records = fan_out()
        assert len(records) == 2
        assert deliver(records) == {"batchItemFailures": []}
    finally:
        server.shutdown()
        server.server_close()
    assert counted(merchant["merchant_id"]) == {"n": 2, "at": 2, "dd": 2, "df": 0}
