"""Request ids that belong to their request (issue 11, item 2): in a burst of concurrent requests through the
local gateway, every answer, success or any error, any route, carries one id of its own, the same in
``X-Request-Id`` and the error body's ``request_id``; the request log and the events use that id."""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.integration.conftest import Gateway
from tests.integration.test_local_gateway import SEED_AUTHORIZE, fire, fresh_key


def test_a_burst_of_concurrent_requests_each_answer_with_its_own_id(gateway: Gateway) -> None:
    key = fresh_key(gateway)  # the seed's 20 payments a second: a burst of 40 gets 429s
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
    assert 429 in statuses, statuses  # 30 payment requests at once against 20 a second

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
