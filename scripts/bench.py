"""Tahsil benchmark: DynamoDB round trips, cold import time and warm latency, per endpoint.

Run with ``make bench`` (or ``.venv/bin/python scripts/bench.py [--n 200] [--import-runs 5]``).

1. DynamoDB round trips per request: every DynamoDB API call a warm handler makes for one
   request (POSTs carry an Idempotency-Key), counted by wrapping botocore's
   ``BaseClient._make_api_call`` (every client, whatever made it) and, for HTTP attempts
   (retries included), a ``before-send.dynamodb`` hook on ``tahsil.aws.client("dynamodb")``.
2. Cold import: a fresh ``python -c`` per run imports the handler's ``app.py`` the way
   ``tests/conftest.py::handler_of`` does (``spec_from_file_location`` + ``exec_module``),
   timed with ``time.perf_counter``; the median of the runs, in ms.
3. Warm latency: p50/p99 over ``--n`` requests through the handler, in process, with moto's
   ``mock_aws`` (resources from template.yaml via ``tahsil_local.aws.create_resources``).
   moto's latency is not DynamoDB's: the figure is the gateway's own overhead plus moto.

Exits 1 if authorize takes more than 4 DynamoDB round trips or a cold import takes 250 ms
or more.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The same switches as tests/conftest.py (which sets them too, on import).
BENCH_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
for _name, _value in BENCH_ENV.items():
    os.environ.setdefault(_name, _value)

from tests.conftest import Answer, _reset_caches, handler_of, load_event  # noqa: E402

AUTHORIZE_MAX_ROUND_TRIPS = 4
COLD_IMPORT_MAX_MS = 250.0
APPROVING_CARD = "4242424242424242"  # tahsil/cards.py: not a decline, not risky -> approved
EXP_YEAR = dt.date.today().year + 3  # cards are validated against today's date

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


class CallCounter:
    """Every AWS API call made in process (by any botocore client), and DynamoDB HTTP attempts."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (service, operation)
        self.ddb_attempts = 0
        self._hooked: set[int] = set()
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self

        def counted(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            counter.calls.append((client.meta.service_model.service_name, operation_name))
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = counted  # type: ignore[method-assign]

    def hook(self) -> None:
        """Count HTTP attempts on the client the handlers share (first, before moto answers)."""
        from tahsil import aws

        ddb = aws.client("dynamodb")
        if id(ddb) not in self._hooked:
            ddb.meta.events.register_first("before-send.dynamodb", self._on_send)
            self._hooked.add(id(ddb))

    def _on_send(self, **_: Any) -> None:
        self.ddb_attempts += 1

    def reset(self) -> None:
        self.calls.clear()
        self.ddb_attempts = 0

    def ddb_ops(self) -> list[str]:
        return [op for service, op in self.calls if service == "dynamodb"]

    def other_ops(self) -> list[str]:
        return [f"{service}:{op}" for service, op in self.calls if service != "dynamodb"]


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
    for fn in template.functions(doc):
        for name, value in fn.environment.items():
            if not name.startswith("POWERTOOLS_"):
                os.environ[name] = local_aws.resolve(value, refs)
    _reset_caches()
    return mock


def fresh_card(serial: int) -> str:
    """A Luhn-valid Visa number the simulated issuer approves, different for every serial.

    Loops use a new card per request: the velocity rule counts authorizations per card per
    hour, so 200 on 4242424242424242 would take the slow path from the 4th and be declined
    as fraud from the 10th.
    """
    from tahsil import cards

    body = f"424242{serial:09d}"
    for digit in "0123456789":
        if cards.luhn_ok(body + digit):
            return body + digit
    raise AssertionError("unreachable")


def card_body(event_name: str, pan: str) -> dict[str, Any]:
    body = json.loads(load_event(event_name)["body"])
    body["card"].update(number=pan, exp_year=EXP_YEAR)
    return body


class Client:
    """Builds events from events/*.json and calls the handlers directly."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.serial = 0
        from tahsil_local.gateway import LambdaContext

        self._context = LambdaContext

    def next_card(self) -> str:
        self.serial += 1
        return fresh_card(self.serial)

    def event(self, name: str, *, body: Any = None, path_id: str | None = None, idem: str | None = None,
              query: dict[str, str] | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idem} if idem else None
        event = load_event(name, key=self.key, body=body, path_id=path_id, headers=headers, query=query)
        if idem is None:  # some sample events carry a fixed key; a bench request gets its own or none
            event["headers"].pop("Idempotency-Key", None)
            event["multiValueHeaders"].pop("Idempotency-Key", None)
        return event

    def context(self, logical_id: str) -> Any:
        return self._context(logical_id, 512, str(uuid.uuid4()), deadline=time.monotonic() + 15)

    def call(self, logical_id: str, event: dict[str, Any]) -> Answer:
        return Answer(handler_of(logical_id)(event, self.context(logical_id)))

    # Setup helpers (never timed)
    def authorized(self) -> dict[str, Any]:
        body = card_body("payments-authorize", self.next_card())
        return ok(self.call("AuthorizePaymentFunction", self.event("payments-authorize", body=body, idem=new_key())))

    def captured(self) -> dict[str, Any]:
        body = card_body("payments-sale", self.next_card())
        return ok(self.call("SalePaymentFunction", self.event("payments-sale", body=body, idem=new_key())))


def new_key() -> str:
    return f"bench-{uuid.uuid4()}"


def ok(answer: Answer) -> dict[str, Any]:
    if not 200 <= answer.status < 300:
        raise SystemExit(f"bench: unexpected answer {answer.status}: {answer.body}")
    return answer.data


# ---------------------------------------------------------------- the measurements


@dataclass
class Result:
    label: str
    logical_id: str
    round_trips: int | None = None
    ddb_ops: list[str] = field(default_factory=list)
    other_ops: list[str] = field(default_factory=list)
    attempts: int | None = None
    rt_min: int | None = None
    rt_max: int | None = None
    p50: float | None = None
    p99: float | None = None
    import_ms: float | None = None
    import_runs: list[float] = field(default_factory=list)
    note: str = ""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    rank = q / 100 * (len(ordered) - 1)  # linear interpolation between closest ranks
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def measure(counter: CallCounter, client: Client, result: Result,
            prepare: Callable[[], dict[str, Any]], n: int, expect: int = 200) -> None:
    """One warm-up request, one counted request, then n timed ones (each prepared untimed)."""
    handler = handler_of(result.logical_id)

    def once() -> tuple[float, Answer]:
        event = prepare()
        context = client.context(result.logical_id)
        counter.hook()
        counter.reset()
        start = time.perf_counter()
        raw = handler(event, context)
        elapsed = (time.perf_counter() - start) * 1000
        answer = Answer(raw)
        if answer.status != expect:
            raise SystemExit(f"bench: {result.label}: expected {expect}, got {answer.status}: {answer.body}")
        return elapsed, answer

    once()  # warm-up: lazy clients, the pepper, a KMS data key, pydantic's first validations
    once()
    result.ddb_ops = counter.ddb_ops()
    result.other_ops = counter.other_ops()
    result.round_trips = len(result.ddb_ops)
    result.attempts = counter.ddb_attempts
    samples: list[float] = []
    trips: list[int] = []
    for _ in range(n):
        elapsed, _answer = once()
        samples.append(elapsed)
        trips.append(len(counter.ddb_ops()))
    result.p50, result.p99 = percentile(samples, 50), percentile(samples, 99)
    result.rt_min, result.rt_max = min(trips), max(trips)


def run_inprocess(n: int) -> tuple[list[Result], list[Result], dict[str, int]]:
    from tahsil import ops

    counter = CallCounter()
    mock = start_aws()
    try:
        writer = Client(ops.create_merchant("Bench Writes")["keys"]["test"]["secret"])
        reader = Client(ops.create_merchant("Bench Reads")["keys"]["test"]["secret"])
        reader.serial = 10**8  # distinct cards from the writer's
        results = {label: Result(label, logical_id) for label, logical_id, _ in ENDPOINTS}
        extra: list[Result] = []

        # authorize: the headline number uses the test card 4242 4242 4242 4242 (the warm-up
        # is its 1st authorization this hour, the counted request its 2nd); the loop uses a
        # new card per request, see fresh_card().
        first = [True, True]

        def authorize() -> dict[str, Any]:
            if first:
                first.pop()
                pan = APPROVING_CARD
            else:
                pan = writer.next_card()
            return writer.event("payments-authorize", body=card_body("payments-authorize", pan), idem=new_key())

        measure(counter, writer, results["authorize"], authorize, n)

        # the replay: the same Idempotency-Key and the same body as an authorization already answered
        replay_key = new_key()
        replay_body = card_body("payments-authorize", writer.next_card())
        writer.call("AuthorizePaymentFunction", writer.event("payments-authorize", body=replay_body, idem=replay_key))
        replay = Result("authorize (replay)", "AuthorizePaymentFunction")
        measure(counter, writer, replay,
                lambda: writer.event("payments-authorize", body=replay_body, idem=replay_key), n)
        replay.note = "same Idempotency-Key and body; answered from the idempotency record"
        extra.append(replay)

        # authorize on a card that already has 3 authorizations this hour: the velocity fast path misses
        busy = Result("authorize (4th+ on one card/hour)", "AuthorizePaymentFunction")
        busy_card = writer.next_card()
        for _ in range(3):
            writer.call("AuthorizePaymentFunction",
                        writer.event("payments-authorize", body=card_body("payments-authorize", busy_card), idem=new_key()))
        counter.reset()
        answer = writer.call("AuthorizePaymentFunction",
                             writer.event("payments-authorize", body=card_body("payments-authorize", busy_card),
                                          idem=new_key()))
        ok(answer)
        busy.ddb_ops = counter.ddb_ops()
        busy.other_ops = counter.other_ops()
        busy.round_trips = len(busy.ddb_ops)
        busy.note = "velocity fast path misses: a velocity read and a second transaction (informational)"
        extra.append(busy)

        measure(counter, writer, results["sale"],
                lambda: writer.event("payments-sale", body=card_body("payments-sale", writer.next_card()),
                                     idem=new_key()), n)
        measure(counter, writer, results["capture"],
                lambda: writer.event("payments-capture", path_id=writer.authorized()["id"], idem=new_key()), n)
        measure(counter, writer, results["void"],
                lambda: writer.event("payments-void", path_id=writer.authorized()["id"], idem=new_key()), n)
        measure(counter, writer, results["refund"],
                lambda: writer.event("payments-refund", path_id=writer.captured()["id"], idem=new_key()), n)

        # Reads run against a second merchant with a fixed data set, so they do not depend on --n.
        payments: list[dict[str, Any]] = []
        for i in range(40):
            payment = reader.authorized()
            payments.append(payment)
            if i < 10:
                ok(reader.call("CapturePaymentFunction", reader.event("payments-capture", path_id=payment["id"],
                                                                       idem=new_key())))
            elif i < 20:
                ok(reader.call("VoidPaymentFunction", reader.event("payments-void", path_id=payment["id"],
                                                                    idem=new_key())))
        for i in range(10):
            payment = reader.captured()
            payments.append(payment)
            if i < 5:
                ok(reader.call("RefundPaymentFunction", reader.event("payments-refund", path_id=payment["id"],
                                                                      idem=new_key())))
        dataset = {"payments": len(payments), "transactions": 40 + 10 + 10 + 10 + 5}
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


def cold_imports(results: list[Result], runs: int) -> None:
    from tahsil_local import template

    functions = {fn.logical_id: fn for fn in template.functions(template.load())}
    env = {**os.environ, **BENCH_ENV}
    for result in results:
        fn = functions[result.logical_id]
        module_file, attr = fn.handler.rsplit(".", 1)
        path = fn.code_dir / f"{module_file}.py"
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", IMPORT_PROBE, str(path), f"test_fn_{fn.logical_id}", attr],
                cwd=ROOT, env=env, capture_output=True, text=True, check=False,
            )
            if out.returncode != 0:
                raise SystemExit(f"bench: importing {path} failed:\n{out.stderr}")
            result.import_runs.append(float(out.stdout.strip().splitlines()[-1]))
        result.import_ms = statistics.median(result.import_runs)


def slowest_imports(result: Result, top: int = 8) -> list[str]:
    """``python -X importtime`` for one handler: the modules that cost the most (cumulative)."""
    from tahsil_local import template

    fn = {f.logical_id: f for f in template.functions(template.load())}[result.logical_id]
    module_file, attr = fn.handler.rsplit(".", 1)
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORT_PROBE, str(fn.code_dir / f"{module_file}.py"),
         f"test_fn_{fn.logical_id}", attr],
        cwd=ROOT, env={**os.environ, **BENCH_ENV}, capture_output=True, text=True, check=False,
    )
    rows = []
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:8.1f} ms  {name}" for us, name in rows[:top]]


# ---------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: list[Result], extra: list[Result]) -> str:
    head = ("| endpoint | DynamoDB round trips | round trips over the loop (min-max) | cold import ms (median) "
            "| warm p50 ms | warm p99 ms |")
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for r in [*results, *extra]:
        loop = "-" if r.rt_min is None else (f"{r.rt_min}" if r.rt_min == r.rt_max else f"{r.rt_min}-{r.rt_max}")
        lines.append(f"| {r.label} | {r.round_trips} | {loop} | {fmt(r.import_ms)} | {fmt(r.p50, 2)} | {fmt(r.p99, 2)} |")
    return "\n".join(lines)


def calls(results: list[Result], extra: list[Result]) -> str:
    lines = []
    for r in [*results, *extra]:
        ops = ", ".join(r.ddb_ops) or "none"
        more = f"  (also: {', '.join(r.other_ops)})" if r.other_ops else ""
        lines.append(f"- {r.label}: {ops}{more}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="timed requests per endpoint (default 200)")
    parser.add_argument("--import-runs", type=int, default=5, help="fresh interpreters per handler (default 5)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.import_runs < 1:
        parser.error("--n and --import-runs must be at least 1")

    began = time.perf_counter()
    machine = (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}),"
               f" {platform.machine()}, {platform.system()} {platform.release()},"
               f" Python {platform.python_version()} ({sys.executable})")
    print(f"Tahsil bench: --n {args.n}, --import-runs {args.import_runs}")
    print(f"machine: {machine}\n")

    results, extra, dataset = run_inprocess(args.n)
    cold_imports(results, args.import_runs)

    print(table(results, extra))
    print()
    print("DynamoDB calls of the counted (warm) request, in order:")
    print(calls(results, extra))
    print()
    print("Notes:")
    print("- Round trips: DynamoDB API calls of one warm request (after a warm-up request); POSTs carry an "
          "Idempotency-Key. The loop column counts every timed request too.")
    print(f"- Reads run against a merchant holding {dataset['payments']} payments and "
          f"{dataset['transactions']} transactions; the queries are those of events/*.json.")
    print("- Cold import: fresh interpreter per run, exec_module of the handler's app.py only (no interpreter "
          "start-up, no Lambda init), tracing and metrics disabled as in tests.")
    print("- Warm latency is in process against moto (mock_aws). moto's latency is NOT DynamoDB's: "
          "the figure is the gateway's own overhead plus moto's, not what a deployed API answers in.")
    mismatched = [r.label for r in results + extra if r.attempts is not None and r.attempts != r.round_trips]
    if mismatched:
        print(f"- HTTP attempts differ from API calls (retries?) for: {', '.join(mismatched)}")

    failures = []
    authorize = results[0]
    if authorize.round_trips is None or authorize.round_trips > AUTHORIZE_MAX_ROUND_TRIPS:
        failures.append(f"authorize makes {authorize.round_trips} DynamoDB round trips "
                        f"(target <= {AUTHORIZE_MAX_ROUND_TRIPS}): {', '.join(authorize.ddb_ops)}")
    if authorize.rt_max is not None and authorize.rt_max > AUTHORIZE_MAX_ROUND_TRIPS:
        failures.append(f"an authorize in the loop made {authorize.rt_max} DynamoDB round trips "
                        f"(target <= {AUTHORIZE_MAX_ROUND_TRIPS})")
    for r in results:
        if r.import_ms is not None and r.import_ms >= COLD_IMPORT_MAX_MS:
            failures.append(f"cold import of {r.label} ({r.logical_id}) takes {r.import_ms:.1f} ms "
                            f"(target < {COLD_IMPORT_MAX_MS:.0f} ms); runs: "
                            + ", ".join(f"{v:.1f}" for v in r.import_runs)
                            + "\n    slowest imports (cumulative):\n    " + "\n    ".join(slowest_imports(r)))
    print(f"\ntook {time.perf_counter() - began:.1f} s")
    if failures:
        print("\nFAIL:")
        for failure in failures:
            print(f"- {failure}")
        return 1
    print(f"\nOK: authorize <= {AUTHORIZE_MAX_ROUND_TRIPS} DynamoDB round trips, "
          f"every cold import < {COLD_IMPORT_MAX_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
