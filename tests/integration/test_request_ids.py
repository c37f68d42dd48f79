"""Request ids that belong to their request (issue 11, item 2): in a burst of concurrent requests through the
local gateway, every answer, success or any error, any route, carries one id of its own, the same in
``X-Request-Id`` and the error body's ``request_id``; the request log and the events use that id."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import requests

from tests.support.gateway import Gateway
from tests.support.local_gateway import SEED_AUTHORIZE, fire, fresh_key


def test_a_burst_of_concurrent_requests_each_answer_with_its_own_id(gateway: Gateway) -> None:
    key = fresh_key(gateway, limits=["payments.per_second=5"])  # so that the burst surely meets 429s
    headers = {"X-API-Key": key}

    def one(i: int) -> requests.Response:
        kind = i % 9
        if kind < 4:  # 20 authorizes on one card, no Idempotency-Key: 200s, 429s, maybe 409 CONCURRENT_UPDATE
            return requests.post(gateway.url + "/v1/payments/authorize", json=SEED_AUTHORIZE, headers=headers, timeout=60)
        if kind < 6:  # 10 sharing one Idempotency-Key: 200 (replays), 409 IDEMPOTENCY_IN_PROGRESS, 429
            return requests.post(gateway.url + "/v1/payments/authorize", json=SEED_AUTHORIZE, timeout=60,
                                 headers={**headers, "Idempotency-Key": "burst-1"})
        if kind == 6:
            return requests.get(gateway.url + "/v1/paymnts", headers=headers, timeout=60)  # 404, no route at all
        if kind == 7:
            return requests.get(gateway.url + "/v1/payments/authorize", headers=headers, timeout=60)  # 405
        return requests.post(gateway.url + "/v1/payments/sale", data="{}", timeout=60,  # 415
                             headers={**headers, "Content-Type": "text/plain"})

    answers = fire(45, one)
    ids: list[str] = []
    statuses: dict[int, int] = {}
    for answer in answers:
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        assert answer.status_code < 500, answer.text
        rid = answer.headers.get("X-Request-Id")
        assert rid, (answer.status_code, answer.text)
        body = answer.json()
        if not body["success"]:
            assert body["error"]["request_id"] == rid, (answer.status_code, body, rid)
            if body["error"]["code"] == "CONCURRENT_UPDATE" and "Idempotency-Key" not in answer.request.headers:
                assert "Idempotency-Key" not in body["error"]["message"], body
        ids.append(rid)
    assert len(set(ids)) == len(ids), "two answers share a request id"
    assert {404, 405, 415} <= set(statuses), statuses
    assert 429 in statuses, statuses  # 30 payment requests at once against 5 a second

    # The events and the request log use the same ids.
    made = [a for a in answers if a.status_code == 200 and "Idempotent-Replayed" not in a.headers]
    assert made
    for answer in made:
        pid = answer.json()["data"]["id"]
        events = requests.get(gateway.url + f"/v1/events?object_id={pid}", headers=headers, timeout=30).json()
        assert [e["request"]["id"] for e in events["data"]["events"]] == [answer.headers["X-Request-Id"]]
    logged: set[str] = set()
    deadline = time.monotonic() + 30
    wanted = {a.headers["X-Request-Id"] for a in answers if a.status_code not in (404, 405)}
    while time.monotonic() < deadline and not wanted <= logged:
        page: dict[str, Any] = requests.get(gateway.url + "/v1/request-logs?limit=100", headers=headers,
                                            timeout=30).json()["data"]
        logged = {r["id"] for r in page["request_logs"]}
        time.sleep(0.5)
    assert wanted <= logged, wanted - logged


def _raw(gateway: Gateway, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = gateway.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=body, headers={"X-API-Key": gateway.key(), **(headers or {})})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def test_every_method_and_path_answers_in_the_envelope_with_its_id(gateway: Gateway) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "FOO"):
        status, headers, raw = _raw(gateway, method, "/v1/payments/authorize")
        assert status == 405 and headers["allow"] == "POST", (method, status, raw)
        error = json.loads(raw)["error"]
        assert error["code"] == "METHOD_NOT_ALLOWED" and error["request_id"] == headers["x-request-id"], method
    status, headers, raw = _raw(gateway, "HEAD", "/v1/payments")
    assert status == 405 and headers["allow"] == "GET" and raw == b"" and headers["x-request-id"]
    status, headers, raw = _raw(gateway, "GET", "/v1/paymnts")
    error = json.loads(raw)["error"]
    assert status == 404 and error["code"] == "NOT_FOUND" and error["request_id"] == headers["x-request-id"]
    json_headers = {"Content-Type": "application/json"}
    for body, want in ((b'{"description": "' + b"a" * 70_000 + b'"}', 413),  # over the API's 64 KiB
                       (b"x" * (7 * 1024 * 1024), 413),  # over Lambda's 6 MB: the front door's own answer
                       (b"\xff\xfe{\x00}\x00", 400), (b"[" * 1000, 400)):
        status, headers, raw = _raw(gateway, "POST", "/v1/payments/authorize", body, json_headers)
        error = json.loads(raw)["error"]
        assert status == want and error["request_id"] == headers["x-request-id"], (status, raw[:200])
    status, headers, raw = _raw(gateway, "POST", "/v1/payments/authorize", b'{"amount": 1}')  # no Content-Type
    error = json.loads(raw)["error"]
    assert status == 415 and "Content-Type: application/json" in error["message"]
