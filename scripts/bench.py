"""Tahsil benchmark: DynamoDB round trips, cold import time and warm latency, per endpoint.

Run with ``make bench`` (or ``.venv/bin/python scripts/bench.py [--n 200] [--import-runs 5]``);
docs/benchmarks.md explains the method and holds the last results.

1. DynamoDB round trips per request: every DynamoDB API call one warm request makes (after a
   warm-up request; POSTs carry a new Idempotency-Key), counted by wrapping botocore's
   ``BaseClient._make_api_call`` (every client, whoever made it), with HTTP attempts
   (retries) counted by a ``before-send.dynamodb`` hook on ``tahsil.store.aws.client("dynamodb")``.
   Also: the authorize replay (same key, same body), and the 4th authorization on one card
   within an hour (informational).
2. Cold import: a fresh ``python -c`` per run imports the handler's ``app.py`` the way
   ``tests/conftest.py::handler_of`` does (``spec_from_file_location`` + ``exec_module``),
   timed with ``time.perf_counter``; the median of ``--import-runs`` runs, in ms.
3. Warm latency: p50/p99 over ``--n`` requests through the handler, in process, on moto's
   ``mock_aws`` (resources from template.yaml via ``tahsil_local.aws.create_resources``).
   moto's latency is not DynamoDB's: the figure is the gateway's own overhead plus moto's.
   "Outside AWS calls" subtracts the time spent in botocore calls (botocore and moto).

4. The local runtime (``scripts/bench_runtime.py``, issue 27): ``tahsil dev``'s peak RSS over a
   burst of 40 authorizes (target <= 1 GiB), and authorizations a second sustained with 8
   concurrent clients (target >= 20).

Exits 1 if authorize takes more than 4 sequential DynamoDB round trips (``--gate-on calls``:
more than 4 calls; the rate-limit counters make 6), or a handler's cold import takes 250 ms
or more, or a local runtime target is missed; the report says which.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.benchlib import (  # noqa: E402 - benchlib sets the bench environment first
    APPROVING_CARD,
    BENCH_ENV,
    ROOT,
    Answer,
    Client,
    _reset_caches,
    card_body,
    clear_tables,
    handler_of,
    load,
    machine,
    new_key,
    percentile,
)

AUTHORIZE_MAX_ROUND_TRIPS = 4
COLD_IMPORT_MAX_MS = 250.0
READ_AUTHORIZED, READ_SALES = 15, 5  # the read endpoints' data set (see run_inprocess)

ENDPOINTS: list[tuple[str, str, str]] = [  # (label, template logical id, events/ file)
    ("authorize", "AuthorizePaymentFunction", "payments-authorize"),
    ("sale", "SalePaymentFunction", "payments-sale"),
    ("capture", "CapturePaymentFunction", "payments-capture"),
    ("void", "VoidPaymentFunction", "payments-void"),
    ("refund", "RefundPaymentFunction", "payments-refund"),
    ("get payment", "GetPaymentFunction", "payments-get"),
    ("list payments", "ListPaymentsFunction", "payments-list"),
    ("get transaction", "GetTransactionFunction", "transactions-get"),
    ("list transactions", "ListTransactionsFunction", "transactions-list"),
]


# ---------------------------------------------------------------- counting AWS calls


@dataclass
class Call:
    service: str
    operation: str
    detail: str  # table and key shape, e.g. "Credentials KEY#…"
    thread: str
    start: float
    end: float = 0.0

    def label(self) -> str:
        return f"{self.operation}({self.detail})" if self.detail else self.operation


def _shape(value: Any) -> str:
    """A key's shape: the fixed words kept, ids and hashes elided (``RL#…#payments#s#…``)."""
    parts = str(value).split("#")
    return "#".join(p if p.isalpha() and len(p) <= 12 else "…" for p in parts)


def _key_of(item: dict[str, Any]) -> str:
    for name in ("pk", "id"):
        if name in item:
            return _shape(next(iter(item[name].values())))
    return ""


def _table(name: str | None) -> str:
    return (name or "?").rsplit("-", 1)[-1].removesuffix("Table")  # tahsil-local-PaymentsTable -> Payments


def describe(operation: str, params: dict[str, Any]) -> str:
    if operation == "TransactWriteItems":
        inner = []
        for action in params.get("TransactItems", []):
            kind, body = next(iter(action.items()))
            inner.append(f"{kind} {_key_of(body.get('Item') or body.get('Key') or {})}".strip())
        tables = sorted({_table(next(iter(a.values())).get("TableName")) for a in params.get("TransactItems", [])})
        return f"{'+'.join(tables)}: {', '.join(inner)}"
    if operation == "Query":
        index = f" {params['IndexName']}" if params.get("IndexName") else ""
        count = " COUNT" if params.get("Select") == "COUNT" else ""
        return f"{_table(params.get('TableName'))}{index}{count}"
    if "TableName" in params:
        key = _key_of(params.get("Key") or params.get("Item") or {})
        return f"{_table(params['TableName'])} {key}".strip()
    return ""


class CallCounter:
    """Every AWS API call made in process (by any botocore client, on any thread), and DynamoDB HTTP attempts."""

    def __init__(self) -> None:
        import threading

        self.calls: list[Call] = []
        self.ddb_attempts = 0
        self.latency_s = 0.0  # simulated network latency per call (a sleep, which releases the GIL)
        self._lock = threading.Lock()
        self._hooked: set[int] = set()
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self

        def counted(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            call = Call(client.meta.service_model.service_name, operation_name, describe(operation_name, api_params),
                        threading.current_thread().name, time.perf_counter())
            with counter._lock:
                counter.calls.append(call)
            try:
                if counter.latency_s:
                    time.sleep(counter.latency_s)
                return original(client, operation_name, api_params)
            finally:
                call.end = time.perf_counter()

        BaseClient._make_api_call = counted  # type: ignore[method-assign]

    def hook(self) -> None:
        """Count HTTP attempts on the client the handlers share (first, before moto answers)."""
        from tahsil.store import aws

        ddb = aws.client("dynamodb")
        if id(ddb) not in self._hooked:
            ddb.meta.events.register_first("before-send.dynamodb", self._on_send)
            self._hooked.add(id(ddb))

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self.ddb_attempts += 1

    def reset(self) -> None:
        with self._lock:
            self.calls = []
            self.ddb_attempts = 0

    def snapshot(self) -> Snapshot:
        with self._lock:
            calls = list(self.calls)
            attempts = self.ddb_attempts
        ddb = [c for c in calls if c.service == "dynamodb"]
        return Snapshot(
            ddb_ops=[c.label() for c in ddb],
            other_ops=[f"{c.service}:{c.label()}" for c in calls if c.service != "dynamodb"],
            attempts=attempts,
            depth=sequential_depth(ddb),
            depth_all=sequential_depth(calls),
            parallel=[c.label() for c in ddb if c.thread != threading_main()],
            aws_ms=union_ms([(c.start, c.end) for c in calls]),
        )


def threading_main() -> str:
    import threading

    return threading.main_thread().name


@dataclass
class Snapshot:
    ddb_ops: list[str]
    other_ops: list[str]
    attempts: int
    depth: int  # the longest chain of DynamoDB calls each starting after the previous ended
    depth_all: int  # the same, over every AWS call (SQS, KMS... too)
    parallel: list[str]  # DynamoDB calls made off the handler's thread
    aws_ms: float  # wall time inside AWS calls (overlaps counted once)


def sequential_depth(calls: list[Call]) -> int:
    """Round trips on the critical path: calls that overlap in time count once."""
    ordered = sorted(calls, key=lambda c: c.end)
    depth: list[int] = []
    for i, call in enumerate(ordered):
        before = [depth[j] for j in range(i) if ordered[j].end <= call.start]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def union_ms(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total * 1000


# ---------------------------------------------------------------- fixtures (as tests/conftest.py's aws_env)


def start_aws() -> Any:
    """A moto account with every resource of template.yaml, and the functions' environment."""
    from moto import mock_aws

    from tahsil_local import aws as local_aws
    from tahsil_local import template

    os.environ.update(local_aws.FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    mock = mock_aws()
    mock.start()
    doc = template.load()
    refs = local_aws.create_resources(doc)
    benched = {logical_id for _, logical_id, _ in ENDPOINTS}
    for fn in template.functions(doc):
        if fn.logical_id not in benched:  # only the environment of the functions under test
            continue
        for name, value in fn.environment.items():
            if not name.startswith("POWERTOOLS_"):
                os.environ[name] = local_aws.resolve(value, refs)
    # Rate limits out of reach: a loop runs faster than 20 payments a second. The counters
    # still run (and are counted); they just never refuse.
    for name in list(os.environ):
        if name.startswith("RATE_LIMIT_") and name.endswith(("_PER_SECOND", "_PER_HOUR")):
            os.environ[name] = str(10**9)
    _reset_caches()
    return mock


# ---------------------------------------------------------------- the measurements


@dataclass
class Result:
    label: str
    logical_id: str
    counted: Snapshot | None = None  # the request after the warm-up, under simulated latency
    calls_min: int | None = None  # over the timed loop
    calls_max: int | None = None
    p50: float | None = None
    p99: float | None = None
    own_p50: float | None = None  # the part outside AWS calls (botocore + moto)
    import_ms: float | None = None
    import_runs: list[float] = field(default_factory=list)

    @property
    def calls(self) -> int | None:
        return len(self.counted.ddb_ops) if self.counted else None

    @property
    def depth(self) -> int | None:
        return self.counted.depth if self.counted else None


SIMULATED_LATENCY_S = 0.03


def measure(counter: CallCounter, client: Client, result: Result, prepare: Callable[[], dict[str, Any]], n: int,
            *, after: Callable[[], None] | None = None, check: Callable[[Answer], bool] | None = None) -> None:
    """A warm-up request; the counted request; then n timed ones. prepare() and after() are untimed.

    The counted request runs with SIMULATED_LATENCY_S of sleep before every AWS call: moto
    answers in process under the GIL, so calls a handler issues in parallel would otherwise
    often run one after the other, and the sequential round trips would be overstated.
    """
    handler = handler_of(result.logical_id)

    def once(latency_s: float = 0.0) -> tuple[float, Snapshot]:
        event = prepare()
        context = client.context(result.logical_id)
        counter.hook()
        counter.reset()
        counter.latency_s = latency_s
        try:
            start = time.perf_counter()
            raw = handler(event, context)
            elapsed = (time.perf_counter() - start) * 1000
        finally:
            counter.latency_s = 0.0
        seen = counter.snapshot()
        answer = Answer(raw)
        if answer.status != 200 or (check and not check(answer)):
            raise SystemExit(f"bench: {result.label}: unexpected answer {answer.status} {answer.headers}: {answer.body}")
        if after:
            after()
        return elapsed, seen

    began = time.perf_counter()
    once()  # warm-up: lazy clients, the pepper, a KMS data key, first validations
    result.counted = once(SIMULATED_LATENCY_S)[1]
    samples: list[float] = []
    own: list[float] = []
    calls: list[int] = []
    for _ in range(n):
        elapsed, seen = once()
        samples.append(elapsed)
        own.append(elapsed - seen.aws_ms)
        calls.append(len(seen.ddb_ops))
    result.p50, result.p99, result.own_p50 = percentile(samples, 50), percentile(samples, 99), percentile(own, 50)
    result.calls_min, result.calls_max = min(calls), max(calls)
    print(f"  {result.label}: {n} requests, p50 {result.p50:.1f} ms ({time.perf_counter() - began:.1f} s)",
          file=sys.stderr, flush=True)


def measure_live_authorize(counter: CallCounter, n: int) -> Result:
    """A live authorize through the Adyen connector, against the tests' fake Adyen on 127.0.0.1.

    The processor call is recorded as one more call ("adyen POST /payments") so the sequential
    depth over every service shows what it adds: the recovery message (SQS) and the two DynamoDB
    phases around it. The fake answers at once; a real Adyen adds its own latency (~200-600 ms).
    """
    from tahsil.connectors import settings
    from tahsil.connectors.adyen import AdyenConnector
    from tahsil.console import ops
    from tahsil_local.fake_adyen import FakeAdyen

    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    fake = FakeAdyen(api_key="bench_api_key_000000", hmac_key="00" * 32, merchant_account="BenchECOM")
    fake.start()
    merchant = ops.create_merchant("Bench Live", live_approved=True)
    settings.configure(merchant["merchant_id"], mode="live", connector="adyen", operator="bench",
                       merchant_account="BenchECOM", api_key="bench_api_key_000000", hmac_key="00" * 32,
                       environment="test", base_url=fake.url)
    original = AdyenConnector.execute

    def recorded(self: AdyenConnector, op: Any, *, timeout: float) -> Any:
        import threading

        call = Call("adyen", f"POST {'/payments' if op.kind in ('authorize', 'sale') else op.kind}", "",
                    threading.current_thread().name, time.perf_counter())
        with counter._lock:
            counter.calls.append(call)
        try:
            if counter.latency_s:
                time.sleep(counter.latency_s)
            return original(self, op, timeout=timeout)
        finally:
            call.end = time.perf_counter()

    AdyenConnector.execute = recorded  # type: ignore[method-assign]
    live = Client(merchant["keys"]["live"]["secret"], first_card=5 * 10**6)
    result = Result("authorize, live via Adyen connector (fake Adyen)", "AuthorizePaymentFunction")
    try:
        measure(counter, live, result,
                lambda: live.event("payments-authorize", body=card_body("payments-authorize", live.next_card()), idem=new_key()),
                n)
    finally:
        AdyenConnector.execute = original  # type: ignore[method-assign]
        fake.stop()
    return result


def run_inprocess(n: int) -> tuple[list[Result], list[Result], dict[str, int]]:
    from tahsil.console import ops

    counter = CallCounter()
    mock = start_aws()
    try:
        writer = Client(ops.create_merchant("Bench Writes")["keys"]["test"]["secret"])
        results = {label: Result(label, logical_id) for label, logical_id, _ in ENDPOINTS}
        extra: list[Result] = []

        # Writes: the test card 4242 4242 4242 4242, a new Idempotency-Key per request, and an
        # empty PaymentsTable before each (see clear_tables), so the card's velocity
        # count this hour is always 1.
        def authorize_event(key: str | None = None) -> dict[str, Any]:
            return writer.event("payments-authorize", body=card_body("payments-authorize", APPROVING_CARD),
                                idem=key or new_key())

        def after_create() -> None:
            clear_tables()

        clear_tables()
        measure(counter, writer, results["authorize"], authorize_event, n, after=after_create)

        # The replay: the same Idempotency-Key and body as an authorization already answered.
        replay_key = new_key()
        replay_event = authorize_event(replay_key)
        writer.call("AuthorizePaymentFunction", json.loads(json.dumps(replay_event)))
        replay = Result("authorize (replay)", "AuthorizePaymentFunction")
        measure(counter, writer, replay, lambda: json.loads(json.dumps(replay_event)), n,
                check=lambda a: a.headers.get("idempotent-replayed") == "true")
        extra.append(replay)

        # Informational: the 4th authorization on one card within the hour (velocity fast path misses).
        clear_tables()
        for _ in range(3):
            writer.authorized()
        counter.hook()
        counter.reset()
        counter.latency_s = SIMULATED_LATENCY_S
        try:
            writer.call("AuthorizePaymentFunction", authorize_event())
        finally:
            counter.latency_s = 0.0
        extra.append(Result("authorize, 4th on one card in an hour", "AuthorizePaymentFunction",
                            counted=counter.snapshot()))
        clear_tables()

        extra.append(measure_live_authorize(counter, n))
        clear_tables()

        measure(counter, writer, results["sale"],
                lambda: writer.event("payments-sale", body=card_body("payments-sale", APPROVING_CARD), idem=new_key()),
                n, after=after_create)
        measure(counter, writer, results["capture"],
                lambda: writer.event("payments-capture", path_id=writer.authorized()["id"], idem=new_key()),
                n, after=after_create)
        measure(counter, writer, results["void"],
                lambda: writer.event("payments-void", path_id=writer.authorized()["id"], idem=new_key()),
                n, after=after_create)
        measure(counter, writer, results["refund"],
                lambda: writer.event("payments-refund", path_id=writer.captured()["id"], idem=new_key()),
                n, after=after_create)

        # Reads: a second merchant with a fixed data set that stays, so they do not depend on --n.
        reader = Client(ops.create_merchant("Bench Reads")["keys"]["test"]["secret"], first_card=10**6)
        payments: list[dict[str, Any]] = []
        transactions = 0
        for i in range(READ_AUTHORIZED):  # a third captured, a third voided, a third left authorized
            payment = reader.authorized(reader.next_card())
            payments.append(payment)
            transactions += 1
            if i % 3 == 0:
                reader.call("CapturePaymentFunction", reader.event("payments-capture", path_id=payment["id"]))
                transactions += 1
            elif i % 3 == 1:
                reader.call("VoidPaymentFunction", reader.event("payments-void", path_id=payment["id"]))
                transactions += 1
        for i in range(READ_SALES):  # half of them partly refunded
            payment = reader.captured(reader.next_card())
            payments.append(payment)
            transactions += 1
            if i % 2 == 0:
                reader.call("RefundPaymentFunction", reader.event("payments-refund", path_id=payment["id"]))
                transactions += 1
        dataset = {"payments": len(payments), "transactions": transactions}
        target = payments[-1]
        measure(counter, reader, results["get payment"], lambda: reader.event("payments-get", path_id=target["id"]), n)
        measure(counter, reader, results["list payments"], lambda: reader.event("payments-list"), n)
        measure(counter, reader, results["get transaction"],
                lambda: reader.event("transactions-get", path_id=target["transaction_id"]), n)
        measure(counter, reader, results["list transactions"], lambda: reader.event("transactions-list"), n)
        return [results[label] for label, _, _ in ENDPOINTS], extra, dataset
    finally:
        _reset_caches()
        mock.stop()


# ---------------------------------------------------------------- cold imports

IMPORT_PROBE = """
import importlib.util, sys, time
path, name, attr = sys.argv[1:4]
start = time.perf_counter()
spec = importlib.util.spec_from_file_location(name, path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
getattr(module, attr)
print((time.perf_counter() - start) * 1000)
"""


def _probe_args(logical_id: str) -> list[str]:
    from tahsil_local import template

    fn = {f.logical_id: f for f in template.functions(template.load())}[logical_id]
    module_file, attr = fn.handler.rsplit(".", 1)
    return ["-c", IMPORT_PROBE, str(fn.code_dir / f"{module_file}.py"), f"test_fn_{logical_id}", attr]


def _probe_env() -> dict[str, str]:
    # No .pyc written or read for the repository's own code, as in Lambda (read-only code, a
    # layer built from source); site-packages keep the .pyc pip compiled, as a built layer does.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    return {**env, **BENCH_ENV, "PYTHONDONTWRITEBYTECODE": "1"}


def cold_imports(results: list[Result], runs: int) -> None:
    for result in results:
        for _ in range(runs):
            out = subprocess.run([sys.executable, *_probe_args(result.logical_id)], cwd=ROOT, env=_probe_env(),
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"bench: importing {result.logical_id}'s handler failed:\n{out.stderr}")
            result.import_runs.append(float(out.stdout.strip().splitlines()[-1]))
        result.import_ms = statistics.median(result.import_runs)


def import_breakdown(logical_id: str, top: int = 8) -> list[str]:
    """``python -X importtime``: self time of every imported module, summed per top-level package."""
    out = subprocess.run([sys.executable, "-X", "importtime", *_probe_args(logical_id)], cwd=ROOT, env=_probe_env(),
                         capture_output=True, text=True, check=False)
    per_package: dict[str, int] = {}
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            self_us = int(parts[0].rsplit(":", 1)[1])
            package = parts[2].strip().split(".")[0]
            per_package[package] = per_package.get(package, 0) + self_us
    ranked = sorted(per_package.items(), key=lambda kv: -kv[1])
    total = sum(per_package.values())
    lines = [f"{us / 1000:7.1f} ms  {name}" for name, us in ranked[:top]]
    lines.append(f"{(total - sum(us for _, us in ranked[:top])) / 1000:7.1f} ms  (everything else)")
    lines.append(f"{total / 1000:7.1f} ms  total (one run under -X importtime, which adds its own overhead)")
    return lines


# ---------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def span(lo: int | None, hi: int | None) -> str:
    return "-" if lo is None else (f"{lo}" if lo == hi else f"{lo}-{hi}")


def table(results: list[Result], extra: list[Result]) -> str:
    lines = [
        "| endpoint | DynamoDB calls | sequential DynamoDB round trips | DynamoDB calls over the loop (min-max) "
        "| cold import ms (median) | warm p50 ms | warm p99 ms | p50 outside AWS calls ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in [*results, *extra]:
        lines.append(f"| {r.label} | {r.calls} | {r.depth} | {span(r.calls_min, r.calls_max)} | {fmt(r.import_ms)} "
                     f"| {fmt(r.p50, 2)} | {fmt(r.p99, 2)} | {fmt(r.own_p50, 2)} |")
    return "\n".join(lines)


def call_list(results: list[Result], extra: list[Result]) -> str:
    lines = []
    for r in [*results, *extra]:
        if r.counted is None:
            continue
        lines.append(f"- {r.label}: {', '.join(r.counted.ddb_ops) or 'none'}")
        if r.counted.parallel:
            lines.append(f"    issued off the handler's thread: {', '.join(r.counted.parallel)}")
        if r.counted.other_ops:
            lines.append(f"    other AWS calls: {', '.join(r.counted.other_ops)} "
                         f"(sequential AWS round trips, every service: {r.counted.depth_all})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tahsil bench: DynamoDB round trips, cold import, warm latency.")
    parser.add_argument("--n", type=int, default=200, help="timed requests per endpoint (default 200)")
    parser.add_argument("--import-runs", type=int, default=5, help="fresh interpreters per handler (default 5)")
    parser.add_argument("--scale-n", type=int, default=100,
                        help="timed authorizations for the raw-boto3 floor comparison (default 100)")
    parser.add_argument("--skip-scale", action="store_true",
                        help="leave out the scale and cost report (scripts/bench_scale.py)")
    parser.add_argument("--skip-runtime", action="store_true",
                        help="leave out the local runtime's burst and sustained runs (scripts/bench_runtime.py)")
    parser.add_argument("--runtime-seconds", type=float, default=20.0,
                        help="the local runtime's sustained window, in seconds (default 20)")
    parser.add_argument("--gate-on", choices=("calls", "sequential"), default="sequential",
                        help="what the authorize <= 4 check counts: the sequential round trips (default; calls in "
                             "flight together count once, as the rate-limit counters are with the idempotency lock), "
                             "or every DynamoDB call")
    args = parser.parse_args(argv)
    if args.n < 1 or args.import_runs < 1:
        parser.error("--n and --import-runs must be at least 1")

    began = time.perf_counter()
    print(f"Tahsil bench: --n {args.n}, --import-runs {args.import_runs}, --gate-on {args.gate_on}")
    print(f"machine: {machine()}; at start: {load()}", flush=True)

    # Powertools Metrics, disabled as in tests, still prints its EMF blob every 100 data
    # points; keep the handlers' output out of the report.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with contextlib.redirect_stdout(io.StringIO()):
        results, extra, dataset = run_inprocess(args.n)
    cold_imports(results, args.import_runs)
    slowest = max(results, key=lambda r: r.import_ms or 0)

    print()
    print(table(results, extra))
    print()
    print("DynamoDB calls of the counted request (the one after the warm-up), in order of issue:")
    print(call_list(results, extra))
    print()
    print(f"Where a cold import goes ({slowest.label}, the slowest; self time per top-level package):")
    print("\n".join(f"  {line}" for line in import_breakdown(slowest.logical_id)))
    print()
    print("Notes:")
    print("- DynamoDB calls: every DynamoDB API call of one warm request (POSTs carry a new Idempotency-Key). "
          "Sequential round trips: the longest chain of those calls each issued after the previous one answered, "
          "so calls in flight together count once; measured on that request with "
          f"{SIMULATED_LATENCY_S * 1000:.0f} ms of simulated network latency per AWS call (moto answers in process, "
          "under the GIL). The loop column counts the calls of every timed request.")
    print("- Writes use the test card 4242 4242 4242 4242 and start from empty PaymentsTable and IdempotencyTable "
          "(emptied between requests, untimed); capture and void get a fresh authorization, refund a fresh sale "
          "(untimed). Rate limits are raised out of reach; their counters still run and are counted.")
    print(f"- Reads run against a merchant holding {dataset['payments']} payments and {dataset['transactions']} "
          "transactions, with the query strings of events/*.json.")
    print("- Cold import: a fresh interpreter per run; only exec_module of the handler's app.py is timed (no "
          "interpreter start-up, no Lambda init); tracing and metrics disabled as in tests; no .pyc for the "
          "repository's own code (site-packages keep theirs).")
    print("- Warm latency: in process against moto (mock_aws). moto's latency is NOT DynamoDB's: the figure is the "
          "gateway's own overhead plus moto's, not what a deployed API answers in. 'Outside AWS calls' subtracts "
          "the wall time spent inside botocore calls (botocore and moto), leaving the gateway's code: Powertools, "
          "validation, hashing, encryption, JSON.")
    retried = [r.label for r in results + extra if r.counted and r.counted.attempts != len(r.counted.ddb_ops)]
    if retried:
        print(f"- HTTP attempts differ from API calls (retries) for: {', '.join(retried)}")

    failures = []
    authorize = results[0]
    measured = authorize.calls if args.gate_on == "calls" else authorize.depth
    loop_max = authorize.calls_max if args.gate_on == "calls" else None
    what = "DynamoDB calls" if args.gate_on == "calls" else "sequential DynamoDB round trips"
    if measured is None or measured > AUTHORIZE_MAX_ROUND_TRIPS:
        failures.append(f"authorize makes {measured} {what} (target <= {AUTHORIZE_MAX_ROUND_TRIPS}): "
                        + ", ".join(authorize.counted.ddb_ops if authorize.counted else []))
    elif loop_max is not None and loop_max > AUTHORIZE_MAX_ROUND_TRIPS:
        failures.append(f"an authorize in the loop made {loop_max} {what} (target <= {AUTHORIZE_MAX_ROUND_TRIPS})")
    for r in results:
        if r.import_ms is not None and r.import_ms >= COLD_IMPORT_MAX_MS:
            failures.append(f"cold import of {r.label} ({r.logical_id}): {r.import_ms:.1f} ms "
                            f"(target < {COLD_IMPORT_MAX_MS:.0f} ms; runs: "
                            + ", ".join(f"{v:.1f}" for v in r.import_runs) + ")")
    if not args.skip_scale:
        from scripts import bench_scale

        print(f"\n## Scale and cost (scripts/bench_scale.py; at start: {load()})\n", flush=True)
        with contextlib.redirect_stdout(io.StringIO()) as noise:
            text, scale_failures = bench_scale.report(args.scale_n, args.import_runs)
        del noise
        print(text)
        failures += scale_failures
    if not args.skip_runtime:
        from scripts import bench_runtime

        print("\n## Local runtime (scripts/bench_runtime.py): peak RSS of a 40-request burst, "
              "authorizations a second with 8 clients\n", flush=True)
        runtime = bench_runtime.run(seconds=args.runtime_seconds)
        print(runtime.text())
        failures += runtime.failures()
    print(f"\ntook {time.perf_counter() - began:.1f} s; at the end: {load()}")
    if failures:
        print("\nFAIL:")
        for failure in failures:
            print(f"- {failure}")
        return 1
    print(f"\nOK: authorize <= {AUTHORIZE_MAX_ROUND_TRIPS} {what}; every cold import < {COLD_IMPORT_MAX_MS:.0f} ms"
          + ("" if args.skip_runtime else "; local runtime: peak RSS and sustained authorizations on target"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
