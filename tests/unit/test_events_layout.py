"""Events in a partition per merchant and mode (EVTS#<merchant>#<mode> / <time-ordered id>), in no index,
and the rows written before that layout (EVT#<id> / EVT, listed through by_owner): both found and listed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.lambdas import invoke, load_event
from tests.support.payments import authorize
from tests.support.webhooks import Receiver, create_endpoint, invoke_raw, run_pipeline


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, aws_env: Any) -> Any:
    monkeypatch.setenv("TAHSIL_LOCAL_RUNTIME", "true")  # test mode may target http://127.0.0.1
    return aws_env


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _events(key: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    answer = invoke("ListEventsFunction", load_event("events-list", key=key, query=query or {}))
    assert answer.status == 200, answer.body
    return answer.data


def _ids(key: str, query: dict[str, str] | None = None) -> list[str]:
    return [e["id"] for e in _events(key, query)["events"]]


def _partition_rows(merchant_id: str) -> list[dict[str, Any]]:
    from tahsil.store import dal

    return dal.query_partition(dal.payments_table(), f"EVTS#{merchant_id}#test", "")


def _to_older_layout(row: dict[str, Any], created: dt.datetime) -> str:
    """Move an event row to the layout written before this one, as if it had been created at ``created``."""
    from tahsil.kernel import clock
    from tahsil.store import dal

    table = dal.payments_table()
    dal._ddb().delete_item(TableName=table, Key=dal.dump({"pk": row["pk"], "sk": row["sk"]}))
    dal.put(table, {**row, "pk": f"EVT#{row['id']}", "sk": "EVT", "created_at": clock.iso(created),
                    "gsi1pk": f"{row['merchant_id']}#{row['mode']}#EVT", "gsi1sk": f"{clock.sortable(created)}#{row['id']}"})
    return str(row["id"])


def test_event_ids_sort_by_time_and_an_event_is_one_row_in_no_index(local: Any, merchant: dict[str, Any]) -> None:
    from tahsil.kernel.ids import looks_like

    key = merchant["keys"]["test"]["secret"]
    payments = [authorize(key).data["id"] for _ in range(3)]
    rows = _partition_rows(merchant["merchant_id"])
    assert len(rows) == 3 and all(r["sk"] == r["id"] and looks_like("evt", r["id"]) and len(r["id"]) == 24 for r in rows)
    assert all("gsi1pk" not in r and "gsi1sk" not in r for r in rows)  # no by_owner copy to write
    assert [r["object_id"] for r in rows] == payments  # the partition's order (by id) is the order of creation
    assert _ids(key) == [r["id"] for r in reversed(rows)]  # newest first: the partition read backwards


def test_an_event_is_found_only_by_its_own_merchant_and_mode(local: Any, merchant: dict[str, Any]) -> None:
    from tahsil.console import ops

    key = merchant["keys"]["test"]["secret"]
    authorize(key)
    [row] = _partition_rows(merchant["merchant_id"])
    assert invoke("GetEventFunction", load_event("events-get", key=key, path_id=row["id"])).status == 200
    other = ops.create_merchant("Other Store", live_approved=True)["keys"]["test"]["secret"]
    live = merchant["keys"]["live"]["secret"]
    for wrong in (other, live):
        answer = invoke("GetEventFunction", load_event("events-get", key=wrong, path_id=row["id"]))
        assert answer.status == 404, answer.body
        assert _ids(wrong) == []
    older = _to_older_layout(row, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    for wrong in (other, live):  # a row of the older layout: its owner is checked
        assert invoke("GetEventFunction", load_event("events-get", key=wrong, path_id=older)).status == 404
        assert _ids(wrong) == []


def test_older_rows_are_found_and_listed_after_the_partition(local: Any, merchant: dict[str, Any]) -> None:
    key = merchant["keys"]["test"]["secret"]
    payments = [authorize(key).data["id"] for _ in range(4)]
    rows = _partition_rows(merchant["merchant_id"])
    now = dt.datetime.now(dt.UTC)
    oldest = _to_older_layout(rows[0], now - dt.timedelta(minutes=10))
    older = _to_older_layout(rows[1], now - dt.timedelta(minutes=5))
    newer, newest = rows[2]["id"], rows[3]["id"]
    everything = [newest, newer, older, oldest]

    for event_id, payment_id in zip([oldest, older, newer, newest], payments, strict=True):
        shown = invoke("GetEventFunction", load_event("events-get", key=key, path_id=event_id))
        assert shown.status == 200 and shown.data["data"]["object"]["id"] == payment_id
    assert _ids(key) == everything
    walked, cursor = [], None  # one at a time, across the two layouts
    while True:
        page = _events(key, {"limit": "1", **({"starting_after": cursor} if cursor else {})})
        walked += [e["id"] for e in page["events"]]
        if not page["has_more"]:
            break
        cursor = page["next_starting_after"]
    assert walked == everything
    assert _ids(key, {"limit": "2", "starting_after": older}) == [oldest]  # a cursor of the older layout
    assert _ids(key, {"object_id": payments[1]}) == [older]
    assert _ids(key, {"type": "payment.authorized", "limit": "3"}) == everything[:3]
    seven = (now - dt.timedelta(minutes=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _ids(key, {"created_gte": seven}) == [newest, newer, older]
    assert _ids(key, {"created_lte": seven}) == [oldest]
    assert _ids(key, {"created_gte": (now + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}) == []
    assert _ids(key, {"delivery_status": "pending"}) == everything
    # Bounds outside the ids' time span (1970 to 2398) hold everything or nothing, never a wrapped-around range.
    assert _ids(key, {"created_gte": "1900-01-01T00:00:00Z"}) == everything
    assert _ids(key, {"created_lte": "9999-12-31T23:59:59Z"}) == everything
    assert _ids(key, {"created_gte": "2500-01-01T00:00:00Z"}) == []
    assert _ids(key, {"created_lte": "1960-01-01T00:00:00Z"}) == []


def test_an_event_of_the_older_layout_is_delivered_redelivered_and_logged(local: Any, merchant: dict[str, Any],
                                                                           receiver: Receiver) -> None:
    from tahsil.webhooks import outbox

    key = merchant["keys"]["test"]["secret"]
    authorize(key)
    [row] = _partition_rows(merchant["merchant_id"])
    event_id = _to_older_layout(row, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    endpoint = create_endpoint(key, receiver.url).data
    # A message queued before events moved (no merchant, no mode): the event is found under its old key.
    message = {"event_id": event_id, "endpoint_id": endpoint["id"], "round": 0, "of": 1}
    receiver.default = 500
    sqs_event = {"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps(message), "attributes": {},
                              "messageAttributes": {}, "eventSource": "aws:sqs"}]}
    assert invoke_raw("WebhookDeliverFunction", sqs_event) == {"batchItemFailures": []}
    assert [r["status"] for r in receiver.received] == [500]
    state = {"event_id": event_id, "endpoint_id": endpoint["id"], "round": 0, "attempt": 2, "schedule": [1],
             "wait_seconds": 1}  # a retry started before events moved: no merchant, no mode either
    assert invoke_raw("WebhookRetryFunction", state)["outcome"] == "failed"
    shown = invoke("GetEventFunction", load_event("events-get", key=key, path_id=event_id)).data
    assert shown["delivery"]["status"] == "failed"
    assert _ids(key, {"delivery_status": "failed"}) == [event_id]  # dlv_failed was added to the old row

    receiver.default = 200
    answer = invoke("RedeliverEventFunction", load_event("events-redeliver", key=key, path_id=event_id))
    assert answer.status in (200, 202), answer.body
    run_pipeline()
    assert [r["status"] for r in receiver.received] == [500, 500, 200]
    assert json.loads(receiver.received[-1]["body"])["id"] == event_id
    assert _ids(key, {"delivery_status": "delivered"}) == [event_id]
    log = invoke("ListEventDeliveriesFunction", load_event("events-deliveries", key=key, path_id=event_id)).data
    [delivery] = log["deliveries"]
    assert [(t["round"], t["number"], t["status_code"]) for t in delivery["history"]] == [(0, 1, 500), (0, 2, 500), (1, 1, 200)]
    page = invoke("ListEndpointDeliveriesFunction", load_event(
        "webhook-endpoints-deliveries", key=key, path_id=endpoint["id"], query={})).data
    assert [(d["event_id"], d["status"]) for d in page["deliveries"]] == [(event_id, "delivered")]
    assert outbox.find_event(merchant["merchant_id"], "test", event_id)["pk"] == f"EVT#{event_id}"
    assert outbox.find_event(merchant["merchant_id"], "live", event_id) is None


@pytest.mark.parametrize("newest_first", [True, False])
def test_owner_events_merges_both_layouts_in_time_order(local: Any, merchant: dict[str, Any], newest_first: bool) -> None:
    from tahsil.webhooks import outbox

    key = merchant["keys"]["test"]["secret"]
    for _ in range(3):
        authorize(key)
    rows = _partition_rows(merchant["merchant_id"])
    now = dt.datetime.now(dt.UTC)
    _to_older_layout(rows[0], now - dt.timedelta(minutes=2))
    oldest_first = [r["id"] for r in rows]
    owner = f"{merchant['merchant_id']}#test"
    expected = oldest_first[::-1] if newest_first else oldest_first
    got = [e["id"] for e in outbox.owner_events(owner, newest_first=newest_first, page_size=1)]
    assert got == expected
    anchor = outbox.find_event(merchant["merchant_id"], "test", expected[0])
    assert [e["id"] for e in outbox.owner_events(owner, newest_first=newest_first, after=anchor)] == expected[1:]
    since = now - dt.timedelta(minutes=1)
    assert [e["id"] for e in outbox.owner_events(owner, newest_first=newest_first, since=since)] == \
        [i for i in expected if i != oldest_first[0]]
