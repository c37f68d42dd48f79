"""Webhooks, handler by handler: endpoints API, signatures, fan-out, attempts, crash safety."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.lambdas import invoke, load_event
from tests.support.payments import authorize
from tests.support.webhooks import Receiver, create_endpoint, invoke_raw, run_pipeline, stream_records


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()










# ------------------------------------------------------------------ signatures


def test_signature_matches_the_standard_webhooks_reference_library() -> None:
    from tahsil.webhooks import signing

    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"id":"evt_1","type":"payment.captured"}'
    sig = signing.standard_signature(secret, "evt_1", 1_700_000_000, body)
    expected = Webhook(secret).sign("evt_1", __import__("datetime").datetime.fromtimestamp(1_700_000_000,
                                    tz=__import__("datetime").UTC), body.decode())
    assert sig == expected


# ------------------------------------------------------------------ endpoints API


def test_endpoint_secret_is_shown_once_and_stored_sealed(local: Any, merchant: dict[str, Any]) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    created = create_endpoint(key, "http://127.0.0.1:9/hook")
    assert created.status == 201
    secret = created.data["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    row = dal.get(dal.credentials_table(), f"WHE#{created.data['id']}", "WHE")
    assert secret not in json.dumps(row) and row["secret_sealed"]["alg"] == "AES-256-GCM"
    listed = invoke("ListWebhookEndpointsFunction", load_event("webhook-endpoints-list", key=key))
    assert listed.data["webhook_endpoints"][0]["id"] == created.data["id"]
    assert "secret" not in listed.data["webhook_endpoints"][0]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "http://127.0.0.1:9/x", "enabled_events": ["payment.nope"]}, "enabled_events"),
        ({"url": "http://127.0.0.1:9/x", "enabled_events": []}, "enabled_events"),
        ({"url": "https://10.1.2.3/x", "enabled_events": ["*"]}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data/", "enabled_events": ["*"]}, "url"),
        ({"enabled_events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:9/x", "enabled_events": ["*"], "colour": "red"}, "colour"),
    ],
)
def test_bad_endpoint_input_is_a_400_naming_the_field(local: Any, merchant: dict[str, Any], body: dict[str, Any],
                                                       param: str) -> None:
    answer = invoke("CreateWebhookEndpointFunction", load_event("webhook-endpoints-create",
                                                                key=merchant["keys"]["test"]["secret"], body=body))
    assert answer.status == 400 and answer.error["param"] == param, answer.body


def test_outside_the_local_runtime_even_test_mode_needs_https(aws_env: Any, merchant: dict[str, Any]) -> None:
    answer = create_endpoint(merchant["keys"]["test"]["secret"], "http://127.0.0.1:9/hook")
    assert answer.status == 400 and answer.error["code"] == "UNSAFE_URL"


def test_another_merchants_endpoint_is_404(local: Any, merchant: dict[str, Any]) -> None:
    from tahsil.console import ops

    created = create_endpoint(merchant["keys"]["test"]["secret"], "http://127.0.0.1:9/hook").data
    other = ops.create_merchant("Other")["keys"]["test"]["secret"]
    answer = invoke("GetWebhookEndpointFunction", load_event("webhook-endpoints-get", key=other, path_id=created["id"]))
    assert answer.status == 404


# ------------------------------------------------------------------ pipeline


def test_events_are_delivered_signed_and_logged(local: Any, merchant: dict[str, Any], receiver: Receiver) -> None:
    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url, ["payment.authorized"]).data
    payment = authorize(key).data
    run_pipeline()
    [got] = receiver.delivered()
    event = Webhook(endpoint["secret"]).verify(got["body"], got["headers"])
    assert event["data"]["object"]["id"] == payment["id"] and event["sequence"] == 1
    listed = invoke("ListEventsFunction", load_event("events-list", key=key, query={"delivery_status": "delivered"}))
    assert [e["id"] for e in listed.data["events"]] == [event["id"]]
    log = invoke("ListEventDeliveriesFunction", load_event("events-deliveries", key=key, path_id=event["id"]))
    [delivery] = log.data["deliveries"]
    assert delivery["status"] == "delivered" and delivery["history"][0]["status_code"] == 200
    assert delivery["history"][0]["response_prefix"] == "ok"


def test_unsubscribed_types_are_not_sent(local: Any, merchant: dict[str, Any], receiver: Receiver) -> None:
    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url, ["payment.refunded"])
    authorize(key)
    run_pipeline()
    assert receiver.received == []


def test_a_crash_after_the_state_transaction_still_ends_in_delivery(local: Any, merchant: dict[str, Any],
                                                                   receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url)
    real = dal.transact

    def commit_then_crash(actions: list[dict[str, Any]]) -> None:
        real(actions)
        raise RuntimeError("the Lambda died right after committing")

    monkeypatch.setattr(dal, "transact", commit_then_crash)
    crashed = authorize(key)
    assert crashed.status == 500  # the merchant saw a failure...
    monkeypatch.setattr(dal, "transact", real)
    run_pipeline()
    [got] = receiver.delivered()  # ...and still receives the event of what did happen
    assert json.loads(got["body"])["type"] == "payment.authorized"


def test_fan_out_and_attempts_are_idempotent(local: Any, merchant: dict[str, Any], receiver: Receiver) -> None:
    from tahsil.store import dal
    from tahsil.webhooks import delivery, fanout
    from tahsil.webhooks.message import Message

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url).data
    authorize(key)
    run_pipeline()
    keys = next(r["dynamodb"]["Keys"] for r in stream_records() if r["dynamodb"]["Keys"]["pk"]["S"].startswith("EVTS#"))
    event_pk, event_id = keys["pk"]["S"], keys["sk"]["S"]
    assert fanout.fan_out({"pk": event_pk, "sk": event_id}) == 1  # a replayed stream batch...
    run_pipeline()
    assert len(receiver.received) == 1  # ...sends nothing twice
    assert delivery.attempt(Message(event_id, endpoint["id"], 0, merchant_id=merchant["merchant_id"],
                                    mode="test")) == {"outcome": "skipped"}
    deliveries = [r for r in dal.query_partition(dal.payments_table(), f"EVT#{event_id}", "DLV#") if r["sk"].count("#") == 1]
    assert len(deliveries) == 1 and deliveries[0]["attempts"] == 1


def test_a_failed_first_attempt_starts_the_retry_state_machine(local: Any, merchant: dict[str, Any],
                                                               receiver: Receiver) -> None:
    import boto3

    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url)
    receiver.default = 503
    authorize(key)
    run_pipeline()
    sfn = boto3.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
    state = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert state["attempt"] == 2 and state["wait_seconds"] == 5 and state["schedule"][:2] == [5, 300]
    assert (state["merchant_id"], state["mode"]) == (merchant["merchant_id"], "test")  # where the event row is


def test_a_retry_step_reports_the_next_wait_and_the_last_one_fails(local: Any, merchant: dict[str, Any],
                                                                   receiver: Receiver) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url)
    receiver.default = 500
    authorize(key)
    run_pipeline()
    event_id = next(r["dynamodb"]["Keys"]["sk"]["S"] for r in stream_records()
                    if r["dynamodb"]["Keys"]["pk"]["S"].startswith("EVTS#"))
    row = next(r for r in dal.query_partition(dal.payments_table(), f"EVT#{event_id}", "DLV#") if r["sk"].count("#") == 1)
    state = {"event_id": event_id, "endpoint_id": row["endpoint_id"], "round": 0, "attempt": 2,
             "schedule": [1, 1], "wait_seconds": 1, "merchant_id": merchant["merchant_id"], "mode": "test"}
    state = invoke_raw("WebhookRetryFunction", state)
    assert state["outcome"] == "retry" and state["attempt"] == 3 and state["wait_seconds"] == 1
    state = invoke_raw("WebhookRetryFunction", state)
    assert state["outcome"] == "failed"
    event = invoke("GetEventFunction", load_event("events-get", key=key, path_id=event_id)).data
    assert event["delivery"]["status"] == "failed"


def test_an_endpoint_pinned_to_the_older_version_gets_the_older_event_shape(local: Any, merchant: dict[str, Any],
                                                                            receiver: Receiver) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url).data
    dal.update(dal.credentials_table(), f"WHE#{endpoint['id']}", "WHE", "SET api_version = :v",
               vals=dal.values(v="2025-12-01.tigris"))
    payment = authorize(key).data
    run_pipeline()
    [got] = receiver.delivered()
    body = Webhook(endpoint["secret"]).verify(got["body"], got["headers"])  # the rendered bytes are what is signed
    assert body["event"] == "payment.authorized" and "type" not in body
    assert body["data"]["payment_id"] == payment["id"]


# ------------------------------------------------------------------ per-endpoint API version, seed payload, rotation

TIGRIS = "2025-12-01.tigris"


def _create(key: str, body: dict[str, Any], headers: dict[str, str] | None = None):
    event = load_event("webhook-endpoints-create", key=key, body=body)
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return invoke("CreateWebhookEndpointFunction", event)


def _update(key: str, endpoint_id: str, body: dict[str, Any]):
    return invoke("UpdateWebhookEndpointFunction",
                  load_event("webhook-endpoints-update", key=key, path_id=endpoint_id, body=body))


def test_an_endpoint_takes_its_api_version_from_the_body_the_header_or_the_account(local: Any, merchant: dict[str, Any],
                                                                                   receiver: Receiver) -> None:
    key = merchant["keys"]["test"]["secret"]
    by_body = _create(key, {"url": receiver.url, "enabled_events": ["*"], "api_version": TIGRIS})
    assert by_body.status == 201 and by_body.data["api_version"] == TIGRIS
    by_header = _create(key, {"url": receiver.url, "enabled_events": ["*"]}, {"Tahsil-Version": TIGRIS})
    assert by_header.status == 201 and by_header.data["api_version"] == TIGRIS
    default = _create(key, {"url": receiver.url, "enabled_events": ["*"]})
    assert default.data["api_version"] == "2026-06-14.basra"
    unknown = _create(key, {"url": receiver.url, "enabled_events": ["*"], "api_version": "2020-01-01.nile"})
    assert unknown.status == 400 and unknown.error["param"] == "api_version"
    moved = _update(key, default.data["id"], {"api_version": TIGRIS})
    assert moved.status == 200 and moved.data["api_version"] == TIGRIS
    assert _update(key, default.data["id"], {"api_version": "nope"}).status == 400
    got = invoke("GetWebhookEndpointFunction", load_event("webhook-endpoints-get", key=key, path_id=default.data["id"]))
    assert got.data["api_version"] == TIGRIS


def test_a_tigris_endpoint_gets_seed_002s_payload_signed_both_ways(local: Any, merchant: dict[str, Any],
                                                                  receiver: Receiver) -> None:
    import hashlib
    import hmac

    key = merchant["keys"]["test"]["secret"]
    endpoint = _create(key, {"url": receiver.url, "enabled_events": ["payment.authorized", "payment_intent.created"],
                             "api_version": TIGRIS}).data
    payment = authorize(key).data
    run_pipeline()
    [got] = receiver.delivered()
    body = json.loads(got["body"])
    assert set(body) == {"event", "timestamp", "id", "data"}
    assert body["event"] == "payment.authorized" and body["id"].startswith("evt_")
    assert body["timestamp"] == payment["created_at"]
    assert body["data"] == {"payment_id": payment["id"], "merchant_id": merchant["merchant_id"], "status": "authorized",
                            "amount": payment["amount"], "currency": "USD", "card_brand": "visa", "card_last4": "4242",
                            "created_at": payment["created_at"]}
    # Seed 002's check, verbatim: hex HMAC-SHA256 of the body with the secret string.
    expected = hmac.new(endpoint["secret"].encode(), got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["x-webhook-signature"] == expected
    Webhook(endpoint["secret"]).verify(got["body"], got["headers"])

    from tests.support.intents import create as create_intent

    intent = create_intent(key).data
    run_pipeline()
    intent_body = json.loads(receiver.delivered()[1]["body"])
    assert intent_body["event"] == "payment_intent.created"
    data = intent_body["data"]
    assert (data["payment_intent_id"], data["merchant_id"], data["status"], data["amount"]) == \
        (intent["id"], merchant["merchant_id"], "created", intent["amount"])
    assert data["success_url"] == intent["success_url"] and "client_secret" not in data


def test_rotation_keeps_the_seed_signature_on_the_old_secret_until_the_merchant_ends_the_overlap(
        local: Any, merchant: dict[str, Any], receiver: Receiver) -> None:
    import hashlib
    import hmac

    def seed_signature(secret: str, body: bytes) -> str:
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url, ["payment.authorized"]).data
    old = endpoint["secret"]
    rotated = invoke("RotateWebhookSecretFunction", load_event("webhook-endpoints-rotate-secret", key=key,
                                                               path_id=endpoint["id"])).data
    new = rotated["secret"]
    assert rotated["previous_secret_expires_at"]
    authorize(key)
    run_pipeline()
    during = receiver.delivered()[0]
    assert during["headers"]["x-webhook-signature"] == seed_signature(old, during["body"])
    assert len(during["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during["body"], during["headers"])
    Webhook(new).verify(during["body"], during["headers"])

    ended = _update(key, endpoint["id"], {"end_secret_overlap": True})
    assert ended.status == 200 and ended.data["previous_secret_expires_at"] is None
    authorize(key)
    run_pipeline()
    after = receiver.delivered()[1]
    assert after["headers"]["x-webhook-signature"] == seed_signature(new, after["body"])
    assert len(after["headers"]["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after["body"], after["headers"])
    with pytest.raises(Exception):  # noqa: B017 - the library's verification error
        Webhook(old).verify(after["body"], after["headers"])


def test_merchants_can_be_created_on_the_seed_version(aws_env: Any) -> None:
    from tahsil.console import ops
    from tahsil.kernel.errors import InvalidRequest

    made = ops.create_merchant("Seed Shop", api_version=TIGRIS)
    assert made["api_version"] == TIGRIS
    declined = authorize(made["keys"]["test"]["secret"], {"amount": 0, "currency": "USD"})
    assert declined.status == 400 and isinstance(declined.body["error"], str)
    with pytest.raises(InvalidRequest):
        ops.create_merchant("Nowhere", api_version="1999-01-01.nile")


def test_two_rotations_at_once_never_lose_a_secret(local: Any, merchant: dict[str, Any], receiver: Receiver,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Both read the endpoint, then both write: the second write's condition fails (409), so every secret a caller
    was shown is either in force or was refused, never silently overwritten."""
    from tahsil.api import auth
    from tahsil.webhooks import endpoints

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, receiver.url, ["payment.authorized"]).data
    stale = endpoints.load_endpoint(auth.authenticate({"X-API-Key": key}), endpoint["id"])  # what the slower request read
    first = invoke("RotateWebhookSecretFunction", load_event("webhook-endpoints-rotate-secret", key=key,
                                                             path_id=endpoint["id"]))
    assert first.status == 200
    with monkeypatch.context() as patched:
        patched.setattr(endpoints, "load_endpoint", lambda _p, _id: stale)
        second = invoke("RotateWebhookSecretFunction", load_event("webhook-endpoints-rotate-secret", key=key,
                                                                  path_id=endpoint["id"]))
    assert second.status == 409 and "rotated by another request" in second.error["message"]
    authorize(key)
    run_pipeline()
    delivered = receiver.delivered()[0]
    Webhook(first.data["secret"]).verify(delivered["body"], delivered["headers"])  # the first secret is in force
    Webhook(endpoint["secret"]).verify(delivered["body"], delivered["headers"])    # and the original, in its overlap


def test_a_delivery_reads_the_endpoint_strongly_consistent(local: Any, merchant: dict[str, Any], receiver: Receiver,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import dal

    key = merchant["keys"]["test"]["secret"]
    create_endpoint(key, receiver.url, ["payment.authorized"])
    reads: list[tuple[str, bool]] = []
    real = dal.get

    def get(table: str, pk: str, sk: str, *, consistent: bool = True) -> Any:
        reads.append((pk, consistent))
        return real(table, pk, sk, consistent=consistent)

    monkeypatch.setattr(dal, "get", get)
    authorize(key)
    run_pipeline()
    assert receiver.delivered()
    endpoint_reads = [c for pk, c in reads if pk.startswith("WHE#")]
    assert endpoint_reads and all(endpoint_reads), "an attempt decided on an eventually consistent endpoint read"
