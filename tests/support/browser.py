"""Browser tests: Debian chromium and its flags (never a downloaded browser), bounded waits, loopback only."""

from __future__ import annotations

import os

import pytest

from tests.support.gateway import ROOT

CHROMIUM = os.environ.get("TAHSIL_CHROMIUM", "/usr/bin/chromium")


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


SCREENSHOTS = ROOT / "artifacts" / "screenshots"


WAIT_MS = 15_000  # every wait is bounded


LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _unavailable(reason: str) -> None:
    if os.environ.get("TAHSIL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required (TAHSIL_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)
