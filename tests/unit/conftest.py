"""Fixtures shared by the unit tests (helpers that are not fixtures live in tests/support/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.console import moto_jwks, new_user, sign_in
from tests.support.runtime import _PROBE
from tests.support.webhooks import Receiver


@pytest.fixture
def jwks(monkeypatch: pytest.MonkeyPatch, aws_env: Any) -> list[str]:
    """The pool's JWKS as moto publishes it, fetched through ``tahsil.identity.cognito.fetch_jwks`` (counted)."""
    from tahsil.identity import cognito

    fetched: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return moto_jwks()

    cognito.KEYS.clear()
    cognito.SESSIONS.clear()
    monkeypatch.setattr(cognito, "fetch_jwks", fetch)
    yield fetched
    cognito.KEYS.clear()
    cognito.SESSIONS.clear()


@pytest.fixture
def user_token(jwks: list[str], merchant: dict[str, Any]) -> str:
    return sign_in(new_user(merchant["merchant_id"]))


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, aws_env: Any) -> Any:
    monkeypatch.setenv("TAHSIL_LOCAL_RUNTIME", "true")  # test mode may target http://127.0.0.1
    return aws_env


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def probe_pool(tmp_path: Any) -> Any:
    """A pool of a tiny function (in a temporary directory) whose environments report their pid and state."""
    from tahsil_local.runtime import FunctionPool
    from tahsil_local.template import Function

    (tmp_path / "app.py").write_text(_PROBE)
    pools = []

    def make(timeout: int = 5, **variables: str) -> FunctionPool:
        fn = Function(logical_id="ProbeFunction", code_dir=tmp_path, handler="app.handler", timeout=timeout,
                      memory=128, environment={})
        pool = FunctionPool(fn, {"PATH": "/usr/bin:/bin", "COLOR": "blue", **variables})
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop()
