"""Fixtures shared by the unit tests (helpers that are not fixtures live in tests/support/)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.console import moto_jwks, new_user, sign_in


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
