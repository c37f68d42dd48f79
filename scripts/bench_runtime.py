"""The local runtime under load: peak memory of a burst, and sustained authorizations a second.

    .venv/bin/python scripts/bench_runtime.py [--burst 40] [--clients 8] [--seconds 20] [--warmup 3]

Also part of ``make bench`` (``scripts/bench.py``, its "Local runtime" section). It starts
``tahsil dev`` (the README's ``make run``) on a free loopback port, with the payments rate limits
raised by parameter (a sustained run goes past 20 a second on purpose), then:

1. **Burst**: ``--burst`` authorizes (distinct Idempotency-Keys and cards) released at once from
   as many threads. While they run, and for 2 s after the last answer (the request-log consumer
   and other queue workers start then), a sampler reads ``/proc`` every 20 ms and keeps the peak
   of the summed ``VmRSS`` of the gateway and every process below it, and the most processes
   seen. ``Pss`` (``/proc/<pid>/smaps_rollup``, shared pages divided among their sharers) is
   sampled every 100 ms too, for information: RSS counts a page shared by N processes N times.
2. **Sustained**: ``--clients`` threads each send authorizes one after another (keep-alive
   connections) for ``--warmup`` + ``--seconds`` seconds; the answers that complete in the last
   ``--seconds`` are counted. Reports authorizations a second, p50/p99 latency, and the CPU
   seconds the gateway process and its execution environments used per authorization
   (``utime + stime`` from ``/proc/<pid>/stat``; exited processes' time is in the gateway's
   ``cutime``/``cstime``).

Targets (issue 27 item 8): peak RSS of the burst at most ``PEAK_RSS_MAX_MIB``; at least
``SUSTAINED_MIN_PER_S`` authorizations a second. Exits 1 and names what failed. The bench's
own client threads share the machine's cores with the gateway, as a test suite's do.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
PEAK_RSS_MAX_MIB = 1024.0
SUSTAINED_MIN_PER_S = 20.0
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _field_kb(path: str, name: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(pids: list[int]) -> float:
    return sum(_field_kb(f"/proc/{p}/status", "VmRSS:") for p in pids) / 1024


def pss_mib(pids: list[int]) -> float:
    return sum(_field_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids) / 1024


def cpu_s(pid: int, children: bool = False) -> float:
    """utime + stime of a process (with ``children``: plus its waited-for children's)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / TICKS


def card(serial: int) -> str:
    """A Luhn-valid Visa number the simulated issuer approves, different for every serial (the velocity
    rule counts a card's authorizations in the hour)."""
    body = f"424242{serial:09d}"
    for digit in "0123456789":
        number = body + digit
        total = 0
        for i, ch in enumerate(reversed(number)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return number
    raise AssertionError("unreachable")


class Sampler(threading.Thread):
    """The peak summed RSS (and PSS) of a process tree, sampled until stopped."""

    def __init__(self, pid: int, every: float = 0.02, pss_every: float = 0.1) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid, self.every, self.pss_every = pid, every, pss_every
        self.peak_rss = self.peak_pss = 0.0
        self.peak_procs = 0
        self._halt = threading.Event()

    def run(self) -> None:
        last_pss = 0.0
        while not self._halt.is_set():
            pids = tree(self.pid)
            self.peak_rss = max(self.peak_rss, rss_mib(pids))
            self.peak_procs = max(self.peak_procs, len(pids))
            if time.monotonic() - last_pss >= self.pss_every:
                self.peak_pss = max(self.peak_pss, pss_mib(pids))
                last_pss = time.monotonic()
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class Report:
    startup_s: float = 0.0
    idle_rss: float = 0.0
    idle_procs: int = 0
    idle_cpu_pct: float = 0.0
    burst: int = 0
    burst_s: float = 0.0
    burst_statuses: dict[int, int] = field(default_factory=dict)
    peak_rss: float = 0.0
    peak_pss: float = 0.0
    peak_procs: int = 0
    clients: int = 0
    seconds: float = 0.0
    sustained: int = 0
    sustained_statuses: dict[int, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    gateway_cpu_ms: float = 0.0  # per authorization
    env_cpu_ms: float = 0.0
    after_rss: float = 0.0
    after_procs: int = 0
    load_start: str = ""
    load_end: str = ""

    @property
    def per_second(self) -> float:
        return self.sustained / self.seconds if self.seconds else 0.0

    def failures(self) -> list[str]:
        out = []
        if self.peak_rss > PEAK_RSS_MAX_MIB:
            out.append(f"peak RSS of a {self.burst}-request burst: {self.peak_rss:,.0f} MiB "
                       f"(target <= {PEAK_RSS_MAX_MIB:,.0f} MiB)")
        if self.burst_statuses != {200: self.burst}:
            out.append(f"burst answers: {self.burst_statuses} (expected {self.burst} x 200)")
        if self.per_second < SUSTAINED_MIN_PER_S:
            out.append(f"sustained authorizations with {self.clients} clients: {self.per_second:.1f}/s "
                       f"(target >= {SUSTAINED_MIN_PER_S:.0f}/s)")
        if set(self.sustained_statuses) - {200}:
            out.append(f"sustained answers: {self.sustained_statuses} (expected only 200)")
        return out

    def text(self) -> str:
        return "\n".join([
            "| measure | value | target |",
            "|---|---|---|",
            f"| start-up (launch to first 200 on GET /v1/payments) | {self.startup_s:.1f} s | |",
            f"| idle after start-up | {self.idle_rss:,.0f} MiB RSS in {self.idle_procs} process(es); "
            f"gateway CPU {self.idle_cpu_pct:.0f} % of a core | |",
            f"| burst: {self.burst} authorizes at once | {self.burst_s:.1f} s, answers "
            f"{dict(sorted(self.burst_statuses.items()))} | |",
            f"| burst: peak RSS, summed over the process tree | **{self.peak_rss:,.0f} MiB** "
            f"({self.peak_procs} processes at most) | <= {PEAK_RSS_MAX_MIB:,.0f} MiB |",
            f"| burst: peak PSS (shared pages divided among sharers) | {self.peak_pss:,.0f} MiB | |",
            f"| sustained: {self.clients} clients for {self.seconds:.0f} s | **{self.per_second:.1f} authorizations/s** "
            f"({self.sustained}; answers {dict(sorted(self.sustained_statuses.items()))}) "
            f"| >= {SUSTAINED_MIN_PER_S:.0f}/s |",
            f"| sustained: latency | p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms | |",
            f"| sustained: CPU per authorization | gateway process {self.gateway_cpu_ms:.1f} ms, "
            f"execution environments {self.env_cpu_ms:.1f} ms | |",
            f"| after the runs | {self.after_rss:,.0f} MiB RSS in {self.after_procs} process(es) | |",
            "",
            f"load average at start {self.load_start}; at the end {self.load_end}",
        ])


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _authorize(session: requests.Session, url: str, key: str, serial: int) -> int:
    body = {"amount": 1000 + serial % 9000, "currency": "USD",
            "card": {"number": card(serial), "cardholder_name": "Bench", "exp_month": 12, "exp_year": 2030,
                     "cvv": "123"}}
    answer = session.post(url, json=body, timeout=120,
                          headers={"X-API-Key": key, "Idempotency-Key": f"rt-{uuid.uuid4()}"})
    return answer.status_code


def run(burst: int = 40, clients: int = 8, seconds: float = 20.0, warmup: float = 3.0,
        extra_env: dict[str, str] | None = None, log_path: Path | None = None) -> Report:
    report = Report(burst=burst, clients=clients, seconds=seconds, load_start=_load())
    state_dir = Path(tempfile.mkdtemp(prefix="tahsil-bench-runtime-"))
    port = free_port()
    env = {**os.environ, "TAHSIL_PORT": str(port), "TAHSIL_STATE_DIR": str(state_dir),
           "TAHSIL_PARAMETER_OVERRIDES": "RateLimitPaymentsPerSecond=100000 RateLimitPaymentsPerHour=10000000",
           **(extra_env or {})}
    env.pop("AWS_ENDPOINT_URL", None)
    log_file = log_path or state_dir / "gateway.log"
    log = open(log_file, "w")  # noqa: SIM115 - closed below
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tahsil_local.cli", "dev"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        state: dict[str, Any] = {}
        key = ""
        while True:
            if time.monotonic() - started > 120:
                raise SystemExit("bench_runtime: the gateway did not answer within 120 s:\n" + log_file.read_text())
            if proc.poll() is not None:
                raise SystemExit("bench_runtime: the gateway exited:\n" + log_file.read_text())
            try:
                state = json.loads((state_dir / f"dev-{port}.json").read_text())
                key = state["keys"]["test"]["secret"]
                if requests.get(state["base_url"] + "/v1/payments", headers={"X-API-Key": key}, timeout=30).ok:
                    break
            except (OSError, ValueError, KeyError, requests.ConnectionError):
                pass
            time.sleep(0.05)
        report.startup_s = time.monotonic() - started
        time.sleep(2)  # the first request's log record reaches its consumer
        cpu0 = cpu_s(proc.pid)
        time.sleep(3)
        report.idle_cpu_pct = (cpu_s(proc.pid) - cpu0) / 3 * 100
        pids = tree(proc.pid)
        report.idle_rss, report.idle_procs = rss_mib(pids), len(pids)
        url = state["base_url"] + "/v1/payments/authorize"

        # 1. the burst
        barrier = threading.Barrier(burst)
        statuses: list[int] = []

        def one(i: int) -> None:
            with requests.Session() as session:
                barrier.wait()
                statuses.append(_authorize(session, url, key, 1_000_000 + i))

        sampler = Sampler(proc.pid)
        sampler.start()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(burst)]
        burst_started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report.burst_s = time.monotonic() - burst_started
        time.sleep(2)
        sampler.stop()
        report.burst_statuses = dict(Counter(statuses))
        report.peak_rss, report.peak_pss, report.peak_procs = sampler.peak_rss, sampler.peak_pss, sampler.peak_procs

        # 2. sustained
        begin = time.monotonic()
        window_start, window_end = begin + warmup, begin + warmup + seconds
        results: list[tuple[float, float, int]] = []  # (start, end, status)
        lock = threading.Lock()

        def client(c: int) -> None:
            serial = 2_000_000 + c * 100_000
            with requests.Session() as session:
                while time.monotonic() < window_end:
                    serial += 1
                    t0 = time.monotonic()
                    status = _authorize(session, url, key, serial)
                    with lock:
                        results.append((t0, time.monotonic(), status))

        workers = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in workers:
            t.start()
        time.sleep(max(0.0, window_start - time.monotonic()))
        gw0, all0 = cpu_s(proc.pid), sum(cpu_s(p) for p in tree(proc.pid)[1:]) + cpu_s(proc.pid, children=True)
        time.sleep(max(0.0, window_end - time.monotonic()))
        gw1, all1 = cpu_s(proc.pid), sum(cpu_s(p) for p in tree(proc.pid)[1:]) + cpu_s(proc.pid, children=True)
        for t in workers:
            t.join()
        counted = [r for r in results if window_start <= r[1] <= window_end]
        report.sustained = sum(1 for r in counted if r[2] == 200)
        report.sustained_statuses = dict(Counter(r[2] for r in counted))
        latencies = sorted((r[1] - r[0]) * 1000 for r in counted)
        if latencies:
            report.p50_ms = statistics.median(latencies)
            report.p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        if counted:
            report.gateway_cpu_ms = (gw1 - gw0) / len(counted) * 1000
            report.env_cpu_ms = ((all1 - all0) - (gw1 - gw0)) / len(counted) * 1000
        pids = tree(proc.pid)
        report.after_rss, report.after_procs = rss_mib(pids), len(pids)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    report.load_end = _load()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=40, help="authorizes released at once (default 40)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the sustained run (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="the sustained run's counted window (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window opens (default 3)")
    parser.add_argument("--log", type=Path, help="keep the gateway's output in this file")
    args = parser.parse_args(argv)
    report = run(args.burst, args.clients, args.seconds, args.warmup, log_path=args.log)
    print(report.text())
    failures = report.failures()
    if failures:
        print("\nFAIL:")
        for failure in failures:
            print(f"- {failure}")
        return 1
    print(f"\nOK: peak RSS <= {PEAK_RSS_MAX_MIB:,.0f} MiB; >= {SUSTAINED_MIN_PER_S:.0f} authorizations/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
