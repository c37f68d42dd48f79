"""Calls against a running local gateway: the tahsil CLI, fresh keys and cards, the seed authorize body, bursts."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.support.gateway import Gateway


def tahsil(gw: Gateway, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAHSIL_STATE_DIR": str(gw.state_dir), "TAHSIL_OPERATOR": "ops@tahsil.example"}
    return subprocess.run([sys.executable, "-m", "tahsil_local.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=check)


_cards = itertools.count(1)


def fresh_card() -> str:
    """A Luhn-valid Visa the simulated issuer approves, new for each payment (velocity rules stay quiet)."""
    body = f"4242420{int(time.time()) % 100000:05d}{next(_cards):03d}"
    for d in "0123456789":
        digits = [int(c) for c in body + d]
        total = sum(digits[-1::-2]) + sum(sum(divmod(2 * x, 10)) for x in digits[-2::-2])
        if total % 10 == 0:
            return body + d
    raise AssertionError("unreachable")


SEED_AUTHORIZE = {
    "amount": 9999, "currency": "USD",
    "card": {"number": "4242424242424242", "cardholder_name": "John Doe", "exp_month": 12, "exp_year": 2030,
             "cvv": "123"},
    "customer": {"email": "john@example.com", "name": "John Doe"},
    "description": "Order #12345 - Premium Plan",
    "metadata": {"order_id": "12345", "plan": "premium"},
}


def fire(n: int, call: Any) -> list[requests.Response]:
    """n calls released together by a barrier."""
    barrier = threading.Barrier(n)

    def one(i: int) -> requests.Response:
        barrier.wait(timeout=30)
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def count_payments(gw: Gateway, key: str) -> int:
    total, cursor = 0, None
    while True:
        page = gw.call("GET", "/v1/payments?limit=100" + (f"&starting_after={cursor}" if cursor else ""), key=key).json()["data"]
        total += len(page["payments"])
        if not page["has_more"]:
            return total
        cursor = page["next_starting_after"]


def fresh_key(gw: Gateway, *, limits: list[str] | None = None) -> str:
    """A new merchant's test secret key; ``limits`` (``payments.per_second=100``...) override its rate limits."""
    env = {**os.environ, "TAHSIL_STATE_DIR": str(gw.state_dir)}
    out = subprocess.run([sys.executable, "-m", "tahsil_local.cli", "merchants", "create", "--name", "Race Store"],
                         env=env, capture_output=True, text=True, timeout=60, check=True)
    created = json.loads(out.stdout)
    if limits:
        subprocess.run([sys.executable, "-m", "tahsil_local.cli", "merchants", "limits", created["merchant_id"],
                        *[arg for item in limits for arg in ("--set", item)]],
                       env=env, capture_output=True, text=True, timeout=60, check=True)
    return created["keys"]["test"]["secret"]
