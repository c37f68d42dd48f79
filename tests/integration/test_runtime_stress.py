"""Many authorizes at once through the local gateway, whose execution environments are processes.

Distinct Idempotency-Keys, 40 in flight: none may meet another's idempotency lock
(409 IDEMPOTENCY_IN_PROGRESS), none may fail (5xx), every answer has its own ``X-Request-Id``,
and a body that names a ``request_id`` names that one. The default run sends 300; ``TAHSIL_STRESS_AUTHORIZES=2000``
runs the full figure of issue 11 (docs/benchmarks.md has its results).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.gateway import Gateway
from tests.support.local_gateway import SEED_AUTHORIZE, count_payments, fresh_key

AUTHORIZES = int(os.environ.get("TAHSIL_STRESS_AUTHORIZES", "300"))
CONCURRENCY = 40


def _card(serial: int) -> str:
    from tahsil.payments import cards

    body = f"424242{serial:09d}"
    return next(body + d for d in "0123456789" if cards.luhn_ok(body + d))


def test_concurrent_authorizes_with_distinct_keys_never_collide(gateway: Gateway) -> None:
    key = fresh_key(gateway, limits=["payments.per_second=100000", "payments.per_hour=10000000"])
    run = uuid.uuid4().hex[:8]

    def one(i: int) -> tuple[int, str | None, str | None, str | None]:
        body = {**SEED_AUTHORIZE, "amount": 1000 + i, "card": {**SEED_AUTHORIZE["card"], "number": _card(i)}}
        answer = requests.post(gateway.url + "/v1/payments/authorize", json=body, timeout=120,
                               headers={"X-API-Key": key, "Idempotency-Key": f"stress-{run}-{i}"})
        doc = answer.json()
        code = (doc.get("error") or {}).get("code")
        body_id = (doc.get("error") or {}).get("request_id") if "error" in doc else doc.get("request_id")
        return answer.status_code, code, answer.headers.get("X-Request-Id"), body_id

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(one, range(AUTHORIZES)))
    elapsed = time.monotonic() - started
    statuses = Counter(status for status, *_ in answers)
    print(f"{AUTHORIZES} authorizes, {CONCURRENCY} at a time: {elapsed:.1f} s, statuses {dict(statuses)}")
    assert not [a for a in answers if a[1] == "IDEMPOTENCY_IN_PROGRESS"]
    assert not [a for a in answers if a[0] >= 500], statuses
    assert statuses == {200: AUTHORIZES}, statuses
    # Every answer has its own X-Request-Id; a body that names a request id (errors always do)
    # names that one.
    assert all(a[2] for a in answers)
    mismatched = [a for a in answers if a[3] is not None and a[2] != a[3]]
    assert not mismatched, mismatched[:5]
    assert len({a[2] for a in answers}) == AUTHORIZES  # one id per request
    assert count_payments(gateway, key) == AUTHORIZES
