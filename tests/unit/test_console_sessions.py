"""Dashboard sessions end with the user, renew with refresh tokens, carry a role, and may need TOTP MFA."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.console import (
    PASSWORD,
    call,
    new_user,
    sign_in,
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The session cache's clock, moved by hand: ``clock[0] += 61``."""
    from tahsil.identity import cognito

    now = [1000.0]
    monkeypatch.setattr(cognito, "_clock", lambda: now[0])
    return now


def _session(body: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return call("dashboard-session", body=body, headers=headers)


def _admin() -> tuple[Any, str]:
    from tahsil.identity import cognito

    return cognito.client(), cognito.pool()[0]


# ------------------------------------------------------------------ sessions end with the user


@pytest.mark.parametrize("ending", ["disabled", "deleted", "signed_out_by_operator", "signed_out_by_user"])
def test_a_session_ends_within_the_check_window_when_the_user_is_disabled_deleted_or_signed_out(
        jwks: list[str], merchant: dict[str, Any], clock: list[float], ending: str) -> None:  # noqa: F811
    from tahsil.identity import cognito

    email = new_user(merchant["merchant_id"])
    token = sign_in(email)
    assert call("account-get", token=token).status == 200
    client, pool_id = _admin()
    if ending == "disabled":
        client.admin_disable_user(UserPoolId=pool_id, Username=email)
    elif ending == "deleted":
        client.admin_delete_user(UserPoolId=pool_id, Username=email)
    elif ending == "signed_out_by_operator":
        client.admin_user_global_sign_out(UserPoolId=pool_id, Username=email)
    else:
        client.global_sign_out(AccessToken=token)
    clock[0] += cognito.SESSION_CHECK_S - 1  # the last check still stands...
    assert call("account-get", token=token).status == 200
    clock[0] += 1  # ...and no longer: Cognito is asked again, and says no
    answer = call("account-get", token=token)
    assert answer.status == 401 and answer.error["code"] == "UNAUTHENTICATED"
    assert "session has ended" in answer.error["message"]
    # No way back in: not with a write either, and not after yet another minute.
    made = call("api-keys-create", token=token, body={"name": "late", "scopes": ["payments:read"]})
    assert made.status == 401
    clock[0] += 120
    assert call("account-get", token=token).status == 401


def test_the_session_check_is_cached_per_token_for_a_minute(jwks: list[str], merchant: dict[str, Any],  # noqa: F811
                                                            clock: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.identity import cognito

    asked: list[str] = []
    real = cognito._get_user
    monkeypatch.setattr(cognito, "_get_user", lambda token: asked.append(token) or real(token))
    token = sign_in(new_user(merchant["merchant_id"]))
    for _ in range(3):
        assert call("account-get", token=token).status == 200
    assert len(asked) == 1
    clock[0] += cognito.SESSION_CHECK_S
    assert call("account-get", token=token).status == 200
    assert len(asked) == 2


def test_signing_out_ends_the_session_and_its_refresh_token_at_once(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    email = new_user(merchant["merchant_id"])
    session = _session({"email": email, "password": PASSWORD}).data
    token = session["access_token"]
    assert call("account-get", token=token).status == 200
    out = _session({"action": "sign_out"}, token)
    assert out.status == 200 and out.data["signed_out"] is True
    assert call("account-get", token=token).status == 401
    renewed = _session({"refresh_token": session["refresh_token"]})
    assert renewed.status == 401
    assert _session({"action": "sign_out"}).status == 401  # no token, no sign-out


def test_a_refresh_token_renews_the_session(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    email = new_user(merchant["merchant_id"], role="developer")
    first = _session({"email": email, "password": PASSWORD}).data
    renewed = _session({"action": "refresh", "refresh_token": first["refresh_token"]})
    assert renewed.status == 200
    data = renewed.data
    assert data["access_token"] != first["access_token"] and data["refresh_token"] == first["refresh_token"]
    assert data["role"] == "developer" and data["merchant_id"] == merchant["merchant_id"] and data["expires_in"] > 0
    assert call("account-get", token=data["access_token"]).status == 200
    bad = _session({"refresh_token": "not-a-refresh-token"})
    assert bad.status == 401


def test_a_disabled_user_gets_no_renewed_session(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    email = new_user(merchant["merchant_id"])
    first = _session({"email": email, "password": PASSWORD}).data
    client, pool_id = _admin()
    client.admin_disable_user(UserPoolId=pool_id, Username=email)
    assert _session({"refresh_token": first["refresh_token"]}).status == 401


# ------------------------------------------------------------------ roles


def test_a_viewer_reads_but_cannot_create_keys_or_endpoints(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    token = sign_in(new_user(merchant["merchant_id"], "viewer@shop.example", role="viewer"))
    assert call("account-get", token=token).status == 200
    assert call("api-keys-list", token=token).status == 200
    assert call("request-logs-list", token=token).status == 200
    for name, body, scope in [
        ("api-keys-create", {"name": "k", "scopes": ["payments:read"]}, "keys:write"),
        ("webhook-endpoints-create", {"url": "https://hooks.shop.example/tahsil", "events": ["payment.captured"]},
         "webhooks:write"),
        ("account-update", {"name": "Renamed"}, "account:write"),
    ]:
        answer = call(name, token=token, body=body)
        assert answer.status == 403, (name, answer.body)
        assert answer.error["code"] == "MISSING_SCOPE" and answer.error["required_scope"] == scope
        assert scope in answer.error["message"] and "viewer" in answer.error["message"]


def test_a_developer_builds_but_cannot_change_the_account(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    token = sign_in(new_user(merchant["merchant_id"], "dev@shop.example", role="developer"))
    made = call("api-keys-create", token=token, body={"name": "ci", "scopes": ["payments:read"]})
    assert made.status == 201
    changed = call("account-update", token=token, body={"legal_name": "Renamed Shop LLC"})
    assert changed.status == 403 and changed.error["required_scope"] == "account:write"


def test_an_owner_may_do_everything_and_a_user_without_a_role_is_a_viewer(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    from tahsil.identity import cognito

    owner = sign_in(new_user(merchant["merchant_id"], "owner@shop.example", role="owner"))
    assert call("account-update", token=owner, body={"legal_name": "Renamed Shop LLC"}).status == 200
    pool_id = cognito.pool()[0]
    client = cognito.client()
    client.admin_create_user(UserPoolId=pool_id, Username="old@shop.example", MessageAction="SUPPRESS",
                             TemporaryPassword=PASSWORD,
                             UserAttributes=[{"Name": "email", "Value": "old@shop.example"},
                                             {"Name": cognito.MERCHANT_CLAIM, "Value": merchant["merchant_id"]}])
    client.admin_set_user_password(UserPoolId=pool_id, Username="old@shop.example", Password=PASSWORD, Permanent=True)
    roleless = sign_in("old@shop.example")
    assert call("account-get", token=roleless).status == 200
    refused = call("api-keys-create", token=roleless, body={"name": "k", "scopes": ["payments:read"]})
    assert refused.status == 403 and "viewer" in refused.error["message"]


def test_create_user_refuses_an_unknown_role(aws_env: Any) -> None:
    from tahsil.identity import users
    from tahsil.kernel.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        users.create_user("x@shop.example", "mer_12345678abcd", temporary_password=PASSWORD, role="admin")
    assert refused.value.param == "role"


# ------------------------------------------------------------------ TOTP MFA


def _turn_on_totp(token: str) -> None:
    setup = _session({"action": "totp_setup"}, token)
    assert setup.status == 200 and setup.data["secret"]
    assert setup.data["otpauth_uri"].startswith("otpauth://totp/Tahsil%3A") and "issuer=Tahsil" in setup.data["otpauth_uri"]
    done = _session({"action": "totp_verify", "mfa_code": "123456"}, token)  # moto accepts any 6 digits
    assert done.status == 200 and done.data["enabled"] is True


def test_totp_mfa_is_set_up_and_then_asked_at_sign_in(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    email = new_user(merchant["merchant_id"])
    _turn_on_totp(sign_in(email))
    first = _session({"email": email, "password": PASSWORD})
    assert first.status == 200 and first.data["challenge"] == "SOFTWARE_TOKEN_MFA" and "access_token" not in first.data
    malformed = _session({"email": email, "session": first.data["session"], "mfa_code": "12ab56"})
    assert malformed.status == 400 and malformed.error["param"] == "mfa_code"
    done = _session({"email": email, "session": first.data["session"], "mfa_code": "654321"})
    assert done.status == 200 and call("account-get", token=done.data["access_token"]).status == 200


def test_totp_setup_needs_a_live_session(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    assert _session({"action": "totp_setup"}).status == 401
    assert _session({"action": "totp_setup"}, "eyJhbGciOi.eyJzdWIi.x").status == 401


def test_owners_need_totp_where_the_deployment_requires_it(jwks: list[str], merchant: dict[str, Any],  # noqa: F811
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.kernel import config

    owner = sign_in(new_user(merchant["merchant_id"], "owner@shop.example", role="owner"))
    developer = sign_in(new_user(merchant["merchant_id"], "dev@shop.example", role="developer"))
    assert call("account-get", token=owner).status == 200  # not required outside prod
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("REQUIRE_OWNER_MFA", "true")
    config.settings.cache_clear()
    try:
        refused = call("account-get", token=owner)
        assert refused.status == 403 and refused.error["code"] == "MFA_REQUIRED"
        assert call("account-get", token=developer).status == 200
        _turn_on_totp(owner)  # allowed without MFA: it is how an owner gets it
        assert call("account-get", token=owner).status == 200
        monkeypatch.setenv("REQUIRE_OWNER_MFA", "false")
        config.settings.cache_clear()
        owner2 = sign_in(new_user(merchant["merchant_id"], "owner2@shop.example", role="owner"))
        assert call("account-get", token=owner2).status == 200
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
