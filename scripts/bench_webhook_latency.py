"""A webhook's first attempt after its commit, measured on the local runtime at low traffic.

    .venv/bin/python scripts/bench_webhook_latency.py [--events 20] [--gap 0.5]

Starts ``tahsil dev`` (the README's ``make run``) on a free loopback port and a receiver on 127.0.0.1,
registers the receiver for ``payment.authorized``, then makes ``--events`` authorizations one at a time,
``--gap`` seconds apart (low traffic: each event travels the pipeline alone). For each it records when the
authorize answered (its transaction, the event row included, committed just before) and when the receiver
got that payment's ``payment.authorized`` POST: stream -> fan-out -> delivery queue -> deliver function ->
HTTP, as in AWS (the local pollers stand in for Lambda's; see docs/webhooks.md, "Latency", for the AWS
model). Prints p50, p95 and max of commit -> first attempt received, in milliseconds. Exits 1 when an
event is not received within 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_runtime import card, free_port  # noqa: E402 - after the path


class Receiver:
    """The merchant's endpoint: notes when each payment's event arrived (monotonic clock)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    payment_id = json.loads(body)["data"]["object"]["id"]
                except (ValueError, KeyError, TypeError):
                    return
                with receiver.cond:
                    receiver.arrived.setdefault(payment_id, at)
                    receiver.cond.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, payment_id: str, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: payment_id in self.arrived, timeout)
            return self.arrived.get(payment_id)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _start_gateway(state_dir: Path, port: int, log_file: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any], Any]:
    env = {**os.environ, "TAHSIL_PORT": str(port), "TAHSIL_STATE_DIR": str(state_dir)}
    env.pop("AWS_ENDPOINT_URL", None)
    log = open(log_file, "w")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen([sys.executable, "-m", "tahsil_local.cli", "dev"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    while True:
        if time.monotonic() - started > 120 or proc.poll() is not None:
            proc.kill()
            raise SystemExit("bench_webhook_latency: the gateway did not start:\n" + log_file.read_text()[-4000:])
        try:
            state = json.loads((state_dir / f"dev-{port}.json").read_text())
            key = state["keys"]["test"]["secret"]
            if requests.get(state["base_url"] + "/v1/payments", headers={"X-API-Key": key}, timeout=30).ok:
                return proc, state, log
        except (OSError, ValueError, KeyError, requests.ConnectionError):
            pass
        time.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(events: int = 20, gap: float = 0.5) -> tuple[list[float], list[float], int]:
    """(commit -> received ms per event, request sent -> received ms per event, events not received)."""
    state_dir = Path(tempfile.mkdtemp(prefix="tahsil-bench-webhooks-"))
    port = free_port()
    receiver = Receiver()
    proc, state, log = _start_gateway(state_dir, port, state_dir / "gateway.log")
    base, key = state["base_url"], state["keys"]["test"]["secret"]
    after_commit: list[float] = []
    after_send: list[float] = []
    missing = 0
    try:
        session = requests.Session()
        answer = session.post(base + "/v1/webhook-endpoints", headers={"X-API-Key": key}, timeout=30,
                              json={"url": receiver.url, "enabled_events": ["payment.authorized"]})
        answer.raise_for_status()
        for i in range(events + 1):  # the first one warms the pipeline's environments up and is not counted
            time.sleep(gap)
            body = {"amount": 1000 + i, "currency": "USD",
                    "card": {"number": card(7_000_000 + i), "cardholder_name": "Bench", "exp_month": 12,
                             "exp_year": 2030, "cvv": "123"}}
            sent = time.monotonic()
            answer = session.post(base + "/v1/payments/authorize", json=body, timeout=60,
                                  headers={"X-API-Key": key, "Idempotency-Key": f"wl-{uuid.uuid4()}"})
            committed = time.monotonic()
            answer.raise_for_status()
            arrived = receiver.wait(answer.json()["data"]["id"], 30)
            if i == 0:
                continue
            if arrived is None:
                missing += 1
                continue
            after_commit.append((arrived - committed) * 1000)
            after_send.append((arrived - sent) * 1000)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        receiver.stop()
    return after_commit, after_send, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20, help="events measured (default 20; one more warms up)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between events (default 0.5)")
    args = parser.parse_args(argv)
    after_commit, after_send, missing = run(args.events, args.gap)
    print(f"Webhook first attempt on the local runtime, {len(after_commit)} events one at a time ({args.gap} s apart):")
    for name, values in (("commit (authorize answered) -> received", after_commit),
                         ("authorize sent -> received", after_send)):
        if values:
            print(f"  {name:40s} p50 {statistics.median(values):6.0f} ms   p95 {percentile(values, 95):6.0f} ms   "
                  f"max {max(values):6.0f} ms")
    if missing:
        print(f"FAIL: {missing} event(s) not received within 30 s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
