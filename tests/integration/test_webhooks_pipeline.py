"""Webhooks end to end through the local gateway: stream fan-out, SQS, Step Functions retries.

The gateway under test runs with a short retry schedule (tests/integration/conftest.py),
passed the way ops would: as the template parameter WebhookRetrySchedule.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.support.gateway import Gateway
from tests.support.local_gateway import SEED_AUTHORIZE, fresh_key
from tests.support.webhooks import Receiver, card_number


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")




def register(gw: Gateway, key: str, url: str, events: list[str] | None = None) -> dict[str, Any]:
    answer = gw.call("POST", "/v1/webhook-endpoints", key=key, json_body={"url": url, "enabled_events": events or ["*"]})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def test_a_payment_event_arrives_signed_per_standard_webhooks(gateway: Gateway, receiver: Receiver) -> None:
    key = fresh_key(gateway)
    endpoint = register(gateway, key, receiver.url)
    assert endpoint["secret"].startswith("whsec_")
    assert "secret" not in gateway.call("GET", f"/v1/webhook-endpoints/{endpoint['id']}", key=key).json()["data"]

    payment = gateway.call("POST", "/v1/payments/authorize", key=key, json_body=SEED_AUTHORIZE).json()["data"]
    got = wait_for(receiver.delivered, 20, "the payment.authorized delivery")[0]
    payload = Webhook(endpoint["secret"]).verify(got["body"], got["headers"])  # raises if the signature is wrong
    assert payload["type"] == "payment.authorized"
    assert payload["data"]["object"]["id"] == payment["id"]
    assert got["headers"]["webhook-id"] == payload["id"]
    import hashlib
    import hmac

    expected = hmac.new(endpoint["secret"].encode(), got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["x-webhook-signature"] == expected

    event = gateway.call("GET", f"/v1/events/{payload['id']}", key=key).json()["data"]
    wait_for(lambda: gateway.call("GET", f"/v1/events/{payload['id']}", key=key).json()["data"]["delivery"]["status"] == "delivered",
             10, "the event to read delivered")
    assert event["type"] == "payment.authorized"


def test_receiver_down_three_times_gets_it_at_attempt_four_on_schedule(gateway: Gateway, receiver: Receiver) -> None:
    key = fresh_key(gateway)
    register(gateway, key, receiver.url)
    receiver.plan = [500, 502, 503]
    gateway.call("POST", "/v1/payments/sale", key=key, json_body=SEED_AUTHORIZE)
    wait_for(receiver.delivered, 40, "delivery at attempt 4")
    tries = receiver.received
    assert [t["status"] for t in tries] == [500, 502, 503, 200]
    assert len({t["headers"]["webhook-id"] for t in tries}) == 1  # stable across retries
    gaps = [b["at"] - a["at"] for a, b in zip(tries, tries[1:], strict=False)]
    schedule = gateway.schedule
    for gap, planned in zip(gaps, schedule, strict=False):
        assert gap >= planned - 0.2, (gaps, schedule)

    event_id = json.loads(tries[0]["body"])["id"]
    log = gateway.call("GET", f"/v1/events/{event_id}/deliveries", key=key).json()["data"]["deliveries"][0]
    assert log["status"] == "delivered" and log["attempts"] == 4
    assert [h["status_code"] for h in log["history"]] == [500, 502, 503, 200]
    assert all(h["next_retry_at"] for h in log["history"][:3]) and log["history"][3]["next_retry_at"] is None


def test_410_disables_the_endpoint(gateway: Gateway, receiver: Receiver) -> None:
    key = fresh_key(gateway)
    endpoint = register(gateway, key, receiver.url)
    receiver.default = 410
    gateway.call("POST", "/v1/payments/sale", key=key, json_body=SEED_AUTHORIZE)
    wait_for(lambda: gateway.call("GET", f"/v1/webhook-endpoints/{endpoint['id']}", key=key).json()["data"]["status"] == "disabled",
             20, "the endpoint to be disabled")
    assert len(receiver.received) == 1  # no retries after 410


def test_a_refused_url_is_a_400_naming_the_reason(gateway: Gateway) -> None:
    key = fresh_key(gateway)
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.0.0.1/hook", "http://0x7f000001/x", "ftp://example.com/"):
        answer = gateway.call("POST", "/v1/webhook-endpoints", key=key, json_body={"url": url, "enabled_events": ["*"]})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "url", answer.text
    live = gateway.call("POST", "/v1/webhook-endpoints", key=gateway.key("live"),
                        json_body={"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]})
    assert live.status_code == 400  # live mode: https only


def test_redeliver_and_rotation_sign_with_both_secrets(gateway: Gateway, receiver: Receiver) -> None:
    key = fresh_key(gateway)
    endpoint = register(gateway, key, receiver.url)
    gateway.call("POST", "/v1/payments/sale", key=key, json_body=SEED_AUTHORIZE)
    first = wait_for(receiver.delivered, 20, "first delivery")[0]
    rotated = gateway.call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", key=key).json()["data"]
    event_id = json.loads(first["body"])["id"]
    assert gateway.call("POST", f"/v1/events/{event_id}/redeliver", key=key).status_code == 202
    second = wait_for(lambda: receiver.delivered()[1:], 20, "redelivery")[0]
    assert len(second["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(rotated["secret"]).verify(second["body"], second["headers"])
    Webhook(endpoint["secret"]).verify(second["body"], second["headers"])
    assert second["body"] == first["body"]


def test_200_payments_against_a_flaky_receiver_lose_nothing_and_duplicate_nothing(gateway: Gateway, receiver: Receiver) -> None:
    key = fresh_key(gateway)
    register(gateway, key, receiver.url, ["payment.captured"])
    receiver.fail_rate = 0.3
    random.seed(7)
    ids = []
    from concurrent.futures import ThreadPoolExecutor

    def pay(i: int) -> str:
        card = {**SEED_AUTHORIZE["card"], "number": card_number(i)}
        for _ in range(20):  # as a merchant's client does: over the 20/s limit, wait Retry-After, same key
            answer = gateway.call("POST", "/v1/payments/sale", key=key, idem=f"flaky-{i}",
                                  json_body={**SEED_AUTHORIZE, "amount": 100 + i, "card": card})
            if answer.status_code != 429:
                break
            time.sleep(float(answer.headers.get("Retry-After", "1")))
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(pay, range(200)))

    def all_in() -> bool:
        got = {json.loads(r["body"])["data"]["object"]["id"] for r in receiver.delivered()}
        return got >= set(ids)

    wait_for(all_in, 180, "every event delivered")
    delivered_events = [json.loads(r["body"])["id"] for r in receiver.delivered()]
    assert len(delivered_events) == len(set(delivered_events)) == 200  # none twice in the delivered set


def test_tahsil_listen_prints_verified_events_and_cleans_up(gateway: Gateway) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.support.gateway import ROOT

    env = {**os.environ, "TAHSIL_STATE_DIR": str(gateway.state_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tahsil_local.cli", "listen", "--events", "payment.captured"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()  # "Listening on ... (endpoint we_..., secret whsec_...)"
        assert first.startswith("Listening on http://127.0.0.1:"), first
        endpoint_id = first.split("endpoint ")[1].split(",")[0]
        paid = gateway.call("POST", "/v1/payments/sale", json_body=SEED_AUTHORIZE).json()["data"]
        line = ""
        deadline = time.monotonic() + 20
        while paid["id"] not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert "payment.captured" in line and "[signature ok]" in line, line
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert f"endpoint {endpoint_id} deleted" in out
    assert gateway.call("GET", f"/v1/webhook-endpoints/{endpoint_id}").status_code == 404
