"""What an event and its deliveries cost to store (issue 15, fewer bytes written), and that it changes nothing
a merchant sees: payloads kept compressed, the delivering attempt kept in the delivery row."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.lambdas import invoke, load_event
from tests.support.payments import authorize
from tests.support.webhooks import Receiver, create_endpoint, invoke_raw, run_pipeline


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, aws_env: Any) -> Any:
    monkeypatch.setenv("TAHSIL_LOCAL_RUNTIME", "true")  # test mode may target http://127.0.0.1
    return aws_env


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.stop()


def _event_row(object_id: str) -> dict[str, Any]:
    from tahsil.store import dal

    rows = [dal.load(i) for i in dal._ddb().scan(TableName=dal.payments_table())["Items"]]
    return next(r for r in rows if r["pk"].startswith("EVTS#") and r["object_id"] == object_id)


def _partition(event_id: str) -> list[dict[str, Any]]:
    from tahsil.store import dal

    return dal.query_partition(dal.payments_table(), f"EVT#{event_id}", "DLV#")


def _retry(event_id: str, endpoint_id: str) -> dict[str, Any]:
    state = {"event_id": event_id, "endpoint_id": endpoint_id, "round": 0, "attempt": 2, "schedule": [1, 1],
             "wait_seconds": 1}
    return invoke_raw("WebhookRetryFunction", state)


def test_an_event_row_stores_its_payload_compressed_under_one_write_unit(local: Any, merchant: dict[str, Any]) -> None:
    from tahsil.kernel.events import payload_of
    from tahsil.store import dal
    from tahsil.store.codec import dump

    key = merchant["keys"]["test"]["secret"]
    payment = authorize(key).data
    row = _event_row(payment["id"])
    stored = row["payload"]
    assert not isinstance(stored, str)  # binary, not the JSON text
    raw = dal._ddb().get_item(TableName=dal.payments_table(), Key=dump({"pk": row["pk"], "sk": row["sk"]}))["Item"]
    size = sum(len(k) + len(v.get("S", "")) + len(v.get("B", b"")) + len(v.get("N", "")) for k, v in raw.items())
    assert size < 1024, f"the event row is {size} bytes"
    assert "delivery_status" not in row  # computed from the counters, never stored
    # the API shows the same event it always did: the object as it was, the whole envelope
    shown = invoke("GetEventFunction", load_event("events-get", key=key, path_id=row["id"])).data
    assert shown["data"]["object"] == payload_of(row)["data"]["object"]
    assert shown["data"]["object"]["id"] == payment["id"] and shown["data"]["object"]["status"] == "authorized"
    assert shown["type"] == "payment.authorized" and shown["sequence"] == 1


@pytest.mark.parametrize("version", ["2026-06-14.basra", "2025-12-01.tigris"])
def test_a_retry_sends_and_signs_the_same_bytes_as_the_first_attempt(local: Any, merchant: dict[str, Any],
                                                                      receiver: Receiver, version: str) -> None:
    from tahsil.kernel.events import payload_text
    from tahsil.store import dal
    from tahsil.webhooks import signing

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url, ["payment.authorized"]).data
    dal.update(dal.credentials_table(), f"WHE#{endpoint['id']}", "WHE", "SET api_version = :v", vals=dal.values(v=version))
    payment = authorize(key).data
    receiver.default = 503
    run_pipeline()
    receiver.default = 200
    row = _event_row(payment["id"])
    assert _retry(row["id"], endpoint["id"])["outcome"] == "delivered"
    first, second = receiver.received
    assert first["status"] == 503 and second["status"] == 200
    assert first["body"] == second["body"]
    for got in (first, second):
        Webhook(endpoint["secret"]).verify(got["body"], got["headers"])  # Standard Webhooks, over the sent bytes
        assert got["headers"]["x-webhook-signature"] == signing.legacy_signature(endpoint["secret"], got["body"])
    sent = json.loads(second["body"])
    if version == "2026-06-14.basra":  # the latest shape is the stored text itself, byte for byte
        assert second["body"] == payload_text(row).encode()
        assert sent["data"]["object"]["id"] == payment["id"]
    else:  # seed 002's flat shape, rendered at delivery
        assert sent["event"] == "payment.authorized" and sent["data"]["payment_id"] == payment["id"]
        assert sent["data"]["merchant_id"] == row["merchant_id"]


def test_the_delivering_attempt_lives_in_the_delivery_row_and_redeliver_keeps_the_history(
        local: Any, merchant: dict[str, Any], receiver: Receiver) -> None:
    from tahsil.webhooks import delivery

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url, ["payment.authorized"]).data
    payment = authorize(key).data
    receiver.default = 500
    run_pipeline()  # attempt 1 fails: an attempt row
    receiver.default = 200
    event_id = _event_row(payment["id"])["id"]
    assert _retry(event_id, endpoint["id"])["outcome"] == "delivered"  # attempt 2 delivers: in the delivery row
    rows = _partition(event_id)
    assert sorted(r["sk"].removeprefix(f"DLV#{endpoint['id']}") for r in rows) == ["", "#000#001"]
    summary = next(r for r in rows if r["sk"].count("#") == 1)
    assert summary[delivery.DELIVERED_ATTEMPT]["number"] == 2 and summary[delivery.DELIVERED_ATTEMPT]["status_code"] == 200

    def history() -> list[tuple[int, int, int]]:
        log = invoke("ListEventDeliveriesFunction", load_event("events-deliveries", key=key, path_id=event_id)).data
        [delivery] = log["deliveries"]
        assert all(t["url"] == receiver.url for t in delivery["history"])
        return [(t["round"], t["number"], t["status_code"]) for t in delivery["history"]]

    assert history() == [(0, 1, 500), (0, 2, 200)]
    answer = invoke("RedeliverEventFunction", load_event("events-redeliver", key=key, path_id=event_id))
    assert answer.status in (200, 202), answer.body
    run_pipeline()
    assert history() == [(0, 1, 500), (0, 2, 200), (1, 1, 200)]
    assert len(receiver.delivered()) == 2
    assert len([r for r in _partition(event_id) if r["sk"].count("#") == 3]) == 2  # round 0's two attempts as rows
    shown = invoke("GetEventFunction", load_event("events-get", key=key, path_id=event_id)).data
    assert shown["delivery"]["status"] == "delivered"


def test_payloads_written_before_compression_and_stream_images_read_the_same() -> None:
    import zlib

    from tahsil.kernel.events import pack, payload_of, payload_text

    text = json.dumps({"id": "evt_x", "type": "payment.captured", "data": {"object": {"id": "pay_x"}}},
                      separators=(",", ":"), sort_keys=True)
    packed = pack(text)
    assert zlib.decompress(packed).decode() == text
    assert payload_text({"payload": text}) == text  # a row written before this change
    assert payload_text({"payload": packed}) == text  # a row read from the table
    assert payload_text({"payload": base64.b64encode(packed).decode()}) == text  # a stream image's binary attribute
    from boto3.dynamodb.types import Binary

    assert payload_of({"payload": Binary(packed)})["data"]["object"]["id"] == "pay_x"
