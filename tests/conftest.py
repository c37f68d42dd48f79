"""Shared fixtures: moto in-process AWS built from template.yaml, a merchant, and event loading."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.lambdas import ROOT

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


def _reset_caches() -> None:
    from tahsil.kernel import config
    from tahsil.store import aws, crypto

    aws.reset()
    config.settings.cache_clear()
    crypto._pepper.cache_clear()
    crypto._subkey.cache_clear()
    crypto.vault = crypto.CardVault("card")
    crypto.secrets_vault = crypto.CardVault("secrets")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh moto account with every resource of template.yaml, and the functions' environment."""
    from moto import mock_aws

    from tahsil_local import aws as local_aws
    from tahsil_local import moto_fixes, pollers, template

    moto_fixes.install()  # as the local runtime: each write atomic across threads (the expiry sweep uses threads)
    for name, value in local_aws.FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        doc = template.load()
        refs = local_aws.create_resources(doc)
        pollers.create_state_machines(doc, refs, ROOT)
        for fn in template.functions(doc):
            for name, value in fn.environment.items():
                if not name.startswith("POWERTOOLS_"):
                    monkeypatch.setenv(name, local_aws.resolve(value, refs))
        _reset_caches()
        yield refs
        _reset_caches()


@pytest.fixture
def merchant(aws_env: Any) -> dict[str, Any]:
    """A merchant whose go-live is approved, so its live keys may take payments (tests/unit/test_console_golive.py
    covers a new merchant, which starts unapproved)."""
    from tahsil.console import ops

    return ops.create_merchant("Test Store", live_approved=True)


@pytest.fixture
def fake_adyen(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fake Adyen on 127.0.0.1 (tahsil_local/fake_adyen.py) and short processor timeouts (tests/support/connectors.py)."""
    from tahsil_local.fake_adyen import FakeAdyen
    from tests.support.connectors import ACCOUNT, API_KEY, HMAC_KEY

    monkeypatch.setenv("PROCESSOR_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("RECOVERY_DELAY_SECONDS", "0")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    fake = FakeAdyen(api_key=API_KEY, hmac_key=HMAC_KEY, merchant_account=ACCOUNT, hang_seconds=0.6)
    fake.start()
    yield fake
    fake.stop()
