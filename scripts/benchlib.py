"""What the bench scripts share: the bench environment, the test-card helpers, a client that calls the
handlers in process, and small statistics. ``scripts/bench.py`` (per endpoint), ``scripts/bench_scale.py``
(scale and cost) and ``scripts/bench_runtime.py`` import this module; none of them imports another's
internals (bench.py only runs the others' reports).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The same switches as tests/conftest.py (which sets them too, on import).
BENCH_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
for _name, _value in BENCH_ENV.items():
    os.environ.setdefault(_name, _value)

from tests.conftest import _reset_caches  # noqa: E402
from tests.support.lambdas import Answer, handler_of, load_event  # noqa: E402

__all__ = ["APPROVING_CARD", "Answer", "BENCH_ENV", "Client", "EXP_YEAR", "ROOT", "_reset_caches", "card_body",
           "clear_tables", "fresh_card", "handler_of", "load", "load_event", "machine", "new_key", "ok",
           "percentile"]

APPROVING_CARD = "4242424242424242"  # tahsil/cards.py: not a decline, not risky -> approved
EXP_YEAR = dt.date.today().year + 3  # cards are validated against today's date


def fresh_card(serial: int) -> str:
    """A Luhn-valid Visa number the simulated issuer approves, different for every serial.

    The read data set needs many payments that stay in the table: on one card, the velocity
    rule would take the slow path from the 4th authorization in an hour and decline the 10th.
    """
    from tahsil.payments import cards

    body = f"424242{serial:09d}"
    for digit in "0123456789":
        if cards.luhn_ok(body + digit):
            return body + digit
    raise AssertionError("unreachable")


def card_body(event_name: str, pan: str) -> dict[str, Any]:
    body = json.loads(load_event(event_name)["body"])
    body["card"].update(number=pan, exp_year=EXP_YEAR)
    return body


def clear_tables() -> None:
    """Empty PaymentsTable and IdempotencyTable, the stream's records included (untimed).

    moto's TransactWriteItems deep-copies the table once per action, and what it copies
    grows with everything written so far: the stream's records (StreamViewType NEW_IMAGE),
    and an empty partition left behind by every deleted item. So the bench empties moto's
    tables directly between write requests, which keeps every request on the same footing;
    with another moto it falls back to the API (correct, but slower as the run goes on).
    The credentials stay.
    """
    from tahsil.kernel.config import settings

    tables = (settings().payments_table, settings().idempotency_table)
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from tahsil_local.aws import REGION

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
        for name in tables:
            table = backend.get_table(name)
            table.items.clear()
            if table.stream_shard is not None:
                table.stream_shard.items.clear()
        return
    except (ImportError, AttributeError, KeyError):
        pass
    from tahsil.store import aws

    ddb = aws.client("dynamodb")
    for table in tables:
        key_names = [k["AttributeName"] for k in ddb.describe_table(TableName=table)["Table"]["KeySchema"]]
        args: dict[str, Any] = {"TableName": table, "ProjectionExpression": ", ".join(key_names)}
        while True:
            page = ddb.scan(**args)
            for i in range(0, len(page["Items"]), 25):
                ddb.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": key}}
                                                           for key in page["Items"][i:i + 25]]})
            if "LastEvaluatedKey" not in page:
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class Client:
    """Builds events from events/*.json for one merchant and calls the handlers directly."""

    def __init__(self, key: str, first_card: int = 0) -> None:
        from tahsil_local.gateway import LambdaContext

        self.key = key
        self.serial = first_card
        self._context = LambdaContext

    def next_card(self) -> str:
        self.serial += 1
        return fresh_card(self.serial)

    def event(self, name: str, *, body: Any = None, path_id: str | None = None, idem: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idem} if idem else None
        event = load_event(name, key=self.key, body=body, path_id=path_id, headers=headers)
        if idem is None:  # a sample event may carry a fixed key: a setup request sends none
            event["headers"].pop("Idempotency-Key", None)
            event["multiValueHeaders"].pop("Idempotency-Key", None)
        return event

    def context(self, logical_id: str) -> Any:
        return self._context(logical_id, 512, str(uuid.uuid4()), deadline=time.monotonic() + 15)

    def call(self, logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        return ok(Answer(handler_of(logical_id)(event, self.context(logical_id))))

    # Setup requests (never timed, no Idempotency-Key)
    def authorized(self, pan: str = APPROVING_CARD) -> dict[str, Any]:
        return self.call("AuthorizePaymentFunction",
                         self.event("payments-authorize", body=card_body("payments-authorize", pan)))

    def captured(self, pan: str = APPROVING_CARD) -> dict[str, Any]:
        return self.call("SalePaymentFunction", self.event("payments-sale", body=card_body("payments-sale", pan)))


def new_key() -> str:
    return f"bench-{uuid.uuid4()}"


def ok(answer: Answer) -> dict[str, Any]:
    if not 200 <= answer.status < 300:
        raise SystemExit(f"bench: unexpected answer {answer.status}: {answer.body}")
    return answer.data


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    rank = q / 100 * (len(ordered) - 1)  # linear interpolation between closest ranks
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpus} CPUs available ({os.cpu_count()} online), {platform.machine()}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else ""
