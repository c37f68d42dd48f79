"""The local runtime's footprint: start-up time and memory (RSS of all its processes).

    .venv/bin/python scripts/runtime_footprint.py [--requests 200] [--concurrency 40]

1. Start-up: ``tahsil dev`` on a free loopback port, timed from launch until ``.tahsil/dev.json``
   exists and ``GET /v1/payments`` with the demo test key answers 200 (the first request of a
   function is a cold start, so this includes one).
2. Memory: the resident set (``VmRSS`` in ``/proc/<pid>/status``) of the gateway process and
   every process below it, summed: once idle after start-up, once after ``--requests``
   authorizes with distinct Idempotency-Keys and cards sent ``--concurrency`` at a time.
3. The burst's wall time, its status codes, and how many processes the runtime ran.

docs/benchmarks.md holds the last figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def card(serial: int) -> str:
    from tahsil.payments import cards

    body = f"424242{serial:09d}"
    return next(body + d for d in "0123456789" if cards.luhn_ok(body + d))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=40)
    args = parser.parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="tahsil-footprint-"))
    port = free_port()
    env = {**os.environ, "TAHSIL_PORT": str(port), "TAHSIL_STATE_DIR": str(state_dir),
           "TAHSIL_PARAMETER_OVERRIDES": "RateLimitPaymentsPerSecond=100000 RateLimitPaymentsPerHour=10000000"}
    env.pop("AWS_ENDPOINT_URL", None)
    log = open(state_dir / "gateway.log", "w")  # noqa: SIM115 - closed below
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tahsil_local.cli", "dev"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        state: dict = {}
        while time.monotonic() - started < 120:
            if proc.poll() is not None:
                raise SystemExit("gateway exited:\n" + (state_dir / "gateway.log").read_text())
            try:
                state = json.loads((state_dir / f"dev-{port}.json").read_text())
                key = state["keys"]["test"]["secret"]
                if requests.get(state["base_url"] + "/v1/payments", headers={"X-API-Key": key}, timeout=30).ok:
                    break
            except (OSError, ValueError, requests.ConnectionError):
                pass
            time.sleep(0.05)
        startup = time.monotonic() - started
        time.sleep(1)
        idle = rss_mb(tree(proc.pid))
        idle_procs = len(tree(proc.pid))
        url = state["base_url"] + "/v1/payments/authorize"

        def one(i: int) -> int:
            body = {"amount": 1000 + i, "currency": "USD",
                    "card": {"number": card(i), "cardholder_name": "Bench", "exp_month": 12, "exp_year": 2030, "cvv": "123"}}
            answer = requests.post(url, json=body, timeout=60,
                                   headers={"X-API-Key": key, "Idempotency-Key": f"fp-{uuid.uuid4()}"})
            return answer.status_code

        burst_started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            statuses = Counter(pool.map(one, range(args.requests)))
        burst = time.monotonic() - burst_started
        busy = rss_mb(tree(proc.pid))
        busy_procs = len(tree(proc.pid))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    print(f"start-up (launch to first 200 on GET /v1/payments): {startup:.1f} s")
    print(f"RSS idle after start-up: {idle:.0f} MB in {idle_procs} process(es)")
    print(f"{args.requests} authorizes, {args.concurrency} at a time: {burst:.1f} s "
          f"({args.requests / burst:.1f}/s), statuses {dict(sorted(statuses.items()))}")
    print(f"RSS after the burst: {busy:.0f} MB in {busy_procs} process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
