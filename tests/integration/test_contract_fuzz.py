"""The contract says what the gateway answers: schemathesis against the local gateway (issue 11, item 4).

Bounded and seeded: every phase (examples, coverage, fuzzing, stateful through the OpenAPI links) with at
most ``MAX_EXAMPLES`` cases per operation and seed ``SEED``, a few minutes in all. Checks: no 5xx,
every status documented, every content type documented, every body valid against its schema, and
schema-violating requests refused. Left out: only the operations that would revoke or roll the
caller's own key (``/v1/api-keys/{id}``, ``/v1/api-keys/{id}/roll``). The rate limits are raised for
this gateway so that the fuzzer tests the routes, not the limiter (which has its own tests).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import Gateway

SEED = 42
MAX_EXAMPLES = 5
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
          "negative_data_rejection")
OWN_KEY = r"^/v1/api-keys/\{id\}"  # revoke (DELETE) and roll: the run would lock itself out
LIMITS = ("RateLimitPaymentsPerSecond=100000 RateLimitPaymentsPerHour=10000000 RateLimitQueriesPerSecond=100000 "
          "RateLimitOtherPerSecond=100000 RateLimitPublicPerSecond=100000")


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("fuzz-gateway"), overrides=LIMITS)
    yield gw
    gw.stop()


def test_schemathesis_finds_nothing(fuzz_gateway: Gateway, tmp_path: Path) -> None:
    cli = shutil.which("st", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is a dev dependency: make install"
    command = [
        cli, "run", fuzz_gateway.url + "/v1/openapi.json", "--url", fuzz_gateway.url,
        "-H", f"X-API-Key: {fuzz_gateway.key()}",
        "--checks", ",".join(CHECKS), "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
        "--phases", "examples,coverage,fuzzing,stateful", "--exclude-path-regex", OWN_KEY,
        "--workers", "1", "--request-timeout", "30", "--no-color",
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20000:]
    ran = re.search(r"(\d+) generated, (\d+) passed", report)
    assert ran and ran.group(1) == ran.group(2) and int(ran.group(1)) > 1000, report[-5000:]
