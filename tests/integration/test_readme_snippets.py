"""The README's shell snippets work as written after `make run`: run with bash against a gateway on a free port
(started with an inline TAHSIL_PORT, as a second `make run` would be), from another shell that has not set it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.gateway import ROOT, Gateway

README = ROOT / "README.md"
SNIPPET_TIMEOUT_S = 120


def shell_blocks(section: str) -> list[str]:
    """The ```sh blocks of one ``## `` section of the README, in order."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else None]
    return re.findall(r"```sh\n(.*?)```", body, flags=re.S)


def run_bash(script: str, gateway: Gateway) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAHSIL_")}
    env["TAHSIL_STATE_DIR"] = str(gateway.state_dir)  # where this test's gateway writes .tahsil/dev-<port>.json
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=SNIPPET_TIMEOUT_S)


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("readme"))
    yield gw
    gw.stop()


def test_the_take_a_payment_snippets_authorize_capture_and_create_a_checkout(gateway: Gateway) -> None:
    blocks = shell_blocks("Take a payment locally")
    assert len(blocks) >= 3 and "tahsil env" in blocks[0]
    assert not any("pay_…" in b or "${TAHSIL_PORT" in b for b in blocks)  # nothing to fill in by hand
    done = run_bash("\n".join(blocks), gateway)
    assert done.returncode == 0, done.stderr + done.stdout
    answers = json_lines(done.stdout)
    assert [a["data"]["status"] for a in answers] == ["authorized", "captured"], done.stdout
    authorized, captured = answers
    assert captured["data"]["id"] == authorized["data"]["id"] and captured["data"]["captured_amount"] == 9999
    checkout_url = done.stdout.strip().splitlines()[-1]
    assert checkout_url.startswith(f"{gateway.url}/checkout/pi_") and "client_secret=" in checkout_url
    assert requests.get(checkout_url, timeout=30).status_code == 200

    again = run_bash("\n".join(blocks), gateway)  # pasted twice: a new payment, not a replayed one
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[0]["data"]["id"] != authorized["data"]["id"]


def test_tahsil_env_exports_the_running_gateway(gateway: Gateway) -> None:
    done = run_bash('eval "$(.venv/bin/tahsil env)"; echo "$TAHSIL_PORT $TAHSIL_URL $TAHSIL_KEY $TAHSIL_MERCHANT_ID"',
                    gateway)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(gateway.port), gateway.url, gateway.key(), gateway.state["merchant_id"]]


def test_going_live_locally_as_the_readme_says(gateway: Gateway) -> None:
    live = {"amount": 100, "currency": "USD", "card": {"number": "4111111111111111", "exp_month": 12,
                                                       "exp_year": 2030, "cvv": "123"}}
    refused = gateway.call("POST", "/v1/payments/authorize", key=gateway.key("live"), json_body=live)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "LIVE_MODE_NOT_ENABLED"
    assert "POST /v1/go-live/reviews" in refused.json()["error"]["message"]  # says what to do

    setup = 'eval "$(.venv/bin/tahsil env)"\n'
    early = run_bash(setup + ".venv/bin/tahsil go-live approve $TAHSIL_MERCHANT_ID --force --reason x", gateway)
    assert early.returncode != 0 and "/v1/go-live/reviews" in early.stderr and "Request review" in early.stderr

    blocks = shell_blocks("Going live locally")
    done = run_bash(setup + "\n".join(blocks), gateway)
    assert done.returncode == 0, done.stderr + done.stdout
    review = json.loads(done.stdout.splitlines()[0])
    assert review["success"] is True and review["data"]["status"] == "requested"
    assert '"live_enabled": true' in done.stdout

    now = gateway.call("POST", "/v1/payments/authorize", key=gateway.key("live"), json_body=live)
    assert now.status_code == 403 and now.json()["error"]["code"] == "LIVE_CONNECTOR_NOT_CONFIGURED"


def test_the_readme_points_at_files_that_exist() -> None:
    for link in re.findall(r"\]\(((?:docs|clients|scripts)/[^)#]+)\)", README.read_text()):
        assert (ROOT / link).exists(), link
    assert Path(ROOT / "scripts" / "fake_adyen.py").exists()
