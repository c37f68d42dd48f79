"""The developer platform through the local gateway, over HTTP: rate limits under concurrency, key
rolls and revocations, IP allowlists, signed requests with the Python client, request logs via SQS."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.support.gateway import ROOT, Gateway
from tests.support.local_gateway import SEED_AUTHORIZE, count_payments, fire, fresh_key

sys.path.insert(0, str(ROOT / "clients" / "python"))
import tahsil_client  # noqa: E402


def new_key(gw: Gateway, **fields: Any) -> dict[str, Any]:
    body = {"name": "integration", "scopes": ["payments:create", "payments:read", "logs:read"], **fields}
    answer = gw.call("POST", "/v1/api-keys", json_body=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def logs_for(gw: Gateway, key: str, want: int, *, query: str = "", timeout: float = 30) -> list[dict[str, Any]]:
    """The request logs of ``key``'s account, once at least ``want`` have come through the queue."""
    deadline = time.monotonic() + timeout
    while True:
        page = gw.call("GET", f"/v1/request-logs?limit=100{query}", key=key).json()["data"]["request_logs"]
        if len(page) >= want or time.monotonic() > deadline:
            return page
        time.sleep(0.5)


def approving_card(serial: int) -> str:
    """A Luhn-valid Visa the simulated issuer approves; a new one per request keeps the fraud velocity rule quiet."""
    from tahsil.payments import cards

    body = f"424242{serial:09d}"
    return next(body + d for d in "0123456789" if cards.luhn_ok(body + d))


def test_25_concurrent_payments_against_20_per_second(gateway: Gateway) -> None:
    key = fresh_key(gateway)
    n = 25
    # Warm-up: n execution environments (cold starts), with a body that fails validation: answered
    # before the rate limiter counts anything.
    warm = fire(n, lambda i: gateway.call("POST", "/v1/payments/authorize", key=key, json_body={"amount": 0}))
    assert {a.status_code for a in warm} == {400}

    def start_of_next_second() -> None:
        time.sleep(1.02 - (time.time() % 1))  # release everyone just after a second begins

    barrier = threading.Barrier(n, action=start_of_next_second)

    def one(i: int) -> requests.Response:
        body = {**SEED_AUTHORIZE, "card": {**SEED_AUTHORIZE["card"], "number": approving_card(7_000 + i)}}
        barrier.wait(timeout=60)
        return gateway.call("POST", "/v1/payments/authorize", key=key, json_body=body)

    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(one, range(n)))
    statuses = [a.status_code for a in answers]
    assert all(s < 500 for s in statuses), statuses
    assert set(statuses) <= {200, 429}, statuses

    admitted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    # The server's own windows: X-RateLimit-Reset is the end of the one-second window that admitted it.
    windows = Counter(int(a.headers["X-RateLimit-Reset"]) - 1 for a in admitted)
    assert max(windows.values()) <= 20, windows
    assert len(refused) >= n - 20 * len(windows)
    if len(windows) == 1:
        assert len(admitted) == 20 and len(refused) == 5
    for a in refused:
        assert int(a.headers["Retry-After"]) >= 1
        assert a.headers["X-RateLimit-Limit"] == "20" and a.headers["X-RateLimit-Remaining"] == "0"
        assert int(a.headers["X-RateLimit-Reset"]) > time.time() - 60
        assert a.json()["error"]["code"] == "RATE_LIMITED"
    # Refused requests never reached the domain: one payment per admitted request.
    assert count_payments(gateway, key) == len(admitted)

    # The request logs (SQS -> consumer -> table) agree, with the server's receive times.
    logged = [e for e in logs_for(gateway, key, 2 * n, query="&path=/v1/payments/authorize") if e["status"] != 400]
    assert len(logged) == n
    allowed = Counter(e["rate_limit"]["reset"] - 1 for e in logged if e["rate_limit"]["outcome"] == "allowed")
    assert allowed == windows
    assert sum(1 for e in logged if e["rate_limit"]["outcome"] == "limited") == len(refused)
    for e in logged:
        received = int(dt.datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")).timestamp())
        window = e["rate_limit"]["reset"] - 1
        # Counted after it was received and before its function's 15 s timeout (how long after depends on the
        # machine's load: the key lookup comes first).
        assert received <= window <= received + 15, (received, window)


def test_rolled_and_revoked_keys_fail_at_once(gateway: Gateway) -> None:
    key = new_key(gateway)
    assert gateway.call("GET", "/v1/payments", key=key["secret"]).status_code == 200
    rolled = gateway.call("POST", f"/v1/api-keys/{key['id']}/roll")
    assert rolled.status_code == 200
    assert gateway.call("GET", "/v1/payments", key=key["secret"]).status_code == 401
    successor = rolled.json()["data"]
    assert gateway.call("GET", "/v1/payments", key=successor["secret"]).status_code == 200
    assert gateway.call("DELETE", f"/v1/api-keys/{successor['id']}").status_code == 200
    assert gateway.call("GET", "/v1/payments", key=successor["secret"]).status_code == 401


def test_the_ip_allowlist_uses_the_gateways_source_address(gateway: Gateway) -> None:
    outside = new_key(gateway, ip_allowlist=["10.0.0.0/8", "2001:db8::/32"])
    refused = requests.get(gateway.url + "/v1/payments", timeout=30,
                           headers={"X-API-Key": outside["secret"], "X-Forwarded-For": "10.1.2.3"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "IP_NOT_ALLOWED"
    inside = new_key(gateway, ip_allowlist=["127.0.0.1/32"])
    assert gateway.call("GET", "/v1/payments", key=inside["secret"]).status_code == 200


def test_signed_requests_with_the_python_client(gateway: Gateway) -> None:
    key = new_key(gateway, require_signing=True)
    client = tahsil_client.TahsilClient(gateway.url, key["secret"], signing_secret=key["signing_secret"])
    status, headers, body = client.request("POST", "/v1/payments/authorize", json_body=SEED_AUTHORIZE,
                                           idempotency_key="signed-1")
    assert status == 200 and body["data"]["status"] == "authorized", body
    status, _, body = client.request("GET", "/v1/request-logs?limit=5&status=2xx")
    assert status == 200, body
    unsigned = gateway.call("GET", "/v1/payments", key=key["secret"])
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "SIGNATURE_REQUIRED"
    stale = tahsil_client.signed_headers(key["signing_secret"], "GET", "/v1/payments", b"", timestamp=int(time.time()) - 400)
    old = requests.get(gateway.url + "/v1/payments", headers={"X-API-Key": key["secret"], **stale}, timeout=30)
    assert old.status_code == 401 and old.json()["error"]["code"] == "SIGNATURE_TIMESTAMP_INVALID"
    logged = logs_for(gateway, gateway.key(), 4, query=f"&key_id={key['id']}")  # the signing key's requests
    outcomes = Counter((e["signature"]["outcome"], e["signature"]["reason"]) for e in logged)
    assert outcomes[("passed", None)] >= 2 and outcomes[("denied", "missing")] == 1 and outcomes[("denied", "clock_drift")] == 1


def test_an_old_version_pinned_by_header_gets_plain_string_errors(gateway: Gateway) -> None:
    answer = requests.post(gateway.url + "/v1/payments/authorize", json={**SEED_AUTHORIZE, "amount": 0}, timeout=30,
                           headers={"X-API-Key": gateway.key(), "Tahsil-Version": "2025-12-01.tigris"})
    assert answer.status_code == 400 and isinstance(answer.json()["error"], str)
    assert answer.headers["Tahsil-Version"] == "2025-12-01.tigris"
