"""Dashboard sign-in: Cognito access tokens on the /v1 API, the session endpoint, and the page itself."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.calls import flush_logs
from tests.support.console import (
    PASSWORD,
    call,
    claims_for,
    mint,
    new_user,
    page,
    sign_in,
)

STATIC = Path(__file__).resolve().parents[2] / "functions" / "dashboard" / "static"


def test_a_signed_in_user_acts_for_their_merchant_in_test_mode_by_default(user_token: str, merchant: dict[str, Any]) -> None:  # noqa: F811
    answer = call("account-get", token=user_token)
    assert answer.status == 200 and answer.data["id"] == merchant["merchant_id"]
    keys = call("api-keys-list", token=user_token)
    assert keys.status == 200 and {k["mode"] for k in keys.data["api_keys"]} == {"test"}
    live = call("api-keys-list", token=user_token, mode="live")
    assert live.status == 200 and {k["mode"] for k in live.data["api_keys"]} == {"live"}


def test_tahsil_mode_picks_live_and_anything_else_is_a_400(user_token: str) -> None:  # noqa: F811
    from tahsil.identity import sessions

    sessions.record_mfa(user_token)  # a live key is a live power: the session has passed MFA (tests/unit/test_payout_changes.py)
    made = call("api-keys-create", token=user_token, mode="live", body={"name": "server", "scopes": ["payments:read"]})
    assert made.status == 201 and made.data["mode"] == "live" and made.data["secret"].startswith("sk_live_")
    bad = call("account-get", token=user_token, mode="production")
    assert bad.status == 400 and bad.error["param"] == "Tahsil-Mode"


def test_the_user_has_every_scope_but_live_payments_still_wait_for_go_live(user_token: str, aws_env: Any) -> None:  # noqa: F811
    from tahsil.console import ops

    # the `merchant` fixture is approved; a dashboard user of a new merchant is not
    other = ops.create_merchant("New Shop")
    token = sign_in(new_user(other["merchant_id"], "owner@new.example"))
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvv": "123"}
    live = call("payments-sale", token=token, mode="live", body={"amount": 500, "currency": "USD", "card": card})
    assert live.status == 403 and live.error["code"] == "LIVE_MODE_NOT_ENABLED"
    test = call("payments-sale", token=token, mode="test", body={"amount": 500, "currency": "USD", "card": card})
    assert test.status == 200 and test.data["livemode"] is False


@pytest.mark.parametrize("case", ["tampered", "foreign_key", "alg_none", "hs256", "expired", "client", "issuer",
                                  "id_token", "future_iat", "garbage"])
def test_a_token_that_fails_any_check_is_a_401(jwks: list[str], merchant: dict[str, Any], case: str,  # noqa: F811
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

    from tahsil.identity import cognito

    asked: list[str] = []  # each check refuses the token before Cognito is even asked about the session
    monkeypatch.setattr(cognito, "_get_user", lambda token: asked.append(token))
    claims = claims_for(merchant["merchant_id"])
    if case == "tampered":
        good = mint(claims)
        head, body, sig = good.split(".")
        forged = dict(claims, sub="99999999-1111-4222-8333-944455556666")
        token = ".".join([head, base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("="), sig])
    elif case == "foreign_key":
        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        token = mint(claims, key=RSAKey.import_key(pem))
    elif case == "alg_none":
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
        token = f"{enc({'alg': 'none', 'kid': 'dummy'})}.{enc(claims)}.c2ln"
    elif case == "hs256":
        from joserfc import jwt
        from joserfc.jwk import OctKey

        token = jwt.encode({"alg": "HS256", "kid": "dummy"}, claims, OctKey.import_key(b"k" * 32))
    elif case == "expired":
        token = mint({**claims, "exp": claims["iat"] - 1, "iat": claims["iat"] - 3601})
    elif case == "client":
        token = mint({**claims, "client_id": "some-other-app-client"})
    elif case == "issuer":
        token = mint({**claims, "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_attacker"})
    elif case == "id_token":  # Cognito cannot revoke an ID token: only access tokens open a session
        token = mint({**{k: v for k, v in claims.items() if k != "client_id"}, "token_use": "id",
                      "aud": claims["client_id"], "custom:merchant_id": merchant["merchant_id"]})
    elif case == "future_iat":
        token = mint({**claims, "iat": claims["iat"] + 600})
    else:
        token = "eyJhbGciOi.eyJzdWIi.x"
    answer = call("account-get", token=token)
    assert answer.status == 401, (case, answer.body)
    assert answer.error["code"] == ("SESSION_EXPIRED" if case == "expired" else "UNAUTHENTICATED")
    assert asked == []


def test_a_valid_token_for_a_merchant_that_does_not_exist_is_a_401(jwks: list[str], aws_env: Any) -> None:  # noqa: F811
    token = sign_in(new_user("mer_DoesNotExist0000000000", "ghost@shop.example"))
    answer = call("account-get", token=token)
    assert answer.status == 401 and "does not exist" in answer.error["message"]


def test_a_user_not_linked_to_a_merchant_is_a_401(jwks: list[str], aws_env: Any) -> None:  # noqa: F811
    from tahsil.identity import cognito

    pool_id, _ = cognito.pool()
    client = cognito.client()
    client.admin_create_user(UserPoolId=pool_id, Username="loose@shop.example", MessageAction="SUPPRESS",
                             TemporaryPassword=PASSWORD, UserAttributes=[{"Name": "email", "Value": "loose@shop.example"}])
    client.admin_set_user_password(UserPoolId=pool_id, Username="loose@shop.example", Password=PASSWORD, Permanent=True)
    answer = call("account-get", token=sign_in("loose@shop.example"))
    assert answer.status == 401 and "custom:merchant_id" in answer.error["message"]


def test_the_jwks_is_fetched_once_from_the_configured_pool_and_cached(user_token: str, jwks: list[str]) -> None:  # noqa: F811
    from tahsil.identity import cognito

    for _ in range(3):
        assert call("account-get", token=user_token).status == 200
    pool_id, _ = cognito.pool()
    assert jwks == [f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}/.well-known/jwks.json"]
    # A token naming an unknown key does not refetch within a minute: forged kids cannot flood the pool.
    assert call("account-get", token=mint(claims_for("mer_x" * 5), header={"alg": "RS256", "kid": "rotated"})).status == 401
    assert len(jwks) == 1


def test_the_jwks_url_follows_the_local_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.identity import cognito

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert cognito.jwks_url("us-east-1_abc") == "http://127.0.0.1:5000/us-east-1_abc/.well-known/jwks.json"


def test_dashboard_requests_are_logged_with_the_user_and_no_key(user_token: str) -> None:  # noqa: F811
    call("account-get", token=user_token)
    [record] = [r for r in flush_logs() if r["path"] == "/v1/account"]
    assert record["user"] == "staff@shop.example" and record["key_id"] is None and record["status"] == 200


# ------------------------------------------------------------------ POST /dashboard/session


def test_sign_in_answers_an_access_token_the_api_accepts(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    email = new_user(merchant["merchant_id"], role="developer")
    answer = call("dashboard-session", body={"email": email, "password": PASSWORD})
    assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.data["email"] == email and answer.data["merchant_id"] == merchant["merchant_id"]
    assert answer.data["role"] == "developer" and answer.data["refresh_token"] and "id_token" not in answer.data
    assert call("account-get", token=answer.data["access_token"]).status == 200


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    email = new_user(merchant["merchant_id"])
    wrong = call("dashboard-session", body={"email": email, "password": "Not-the-password-1"})
    unknown = call("dashboard-session", body={"email": "nobody@shop.example", "password": PASSWORD})
    assert wrong.status == unknown.status == 401
    assert wrong.error["message"] == unknown.error["message"] == "incorrect email or password"


def test_a_new_user_sets_a_password_at_first_sign_in(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    from tahsil.identity import users

    users.create_user("new@shop.example", merchant["merchant_id"], temporary_password="Temporary-pass-1")
    first = call("dashboard-session", body={"email": "new@shop.example", "password": "Temporary-pass-1"})
    assert first.status == 200 and first.data["challenge"] == "NEW_PASSWORD_REQUIRED" and "id_token" not in first.data
    done = call("dashboard-session", body={"email": "new@shop.example", "session": first.data["session"],
                                           "new_password": "Brand-new-pass-42"})
    assert done.status == 200 and call("account-get", token=done.data["access_token"]).status == 200


def test_the_session_endpoint_needs_a_password(aws_env: Any) -> None:
    answer = call("dashboard-session", body={"email": "a@b.example"})
    assert answer.status == 400 and answer.error["param"] == "password"


# ------------------------------------------------------------------ the page


def test_the_page_has_a_strict_csp_and_no_inline_code(aws_env: Any) -> None:
    status, headers, html = page("dashboard-page")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    assert " style=" not in html and not re.search(r"\son[a-z]+=", html)  # no inline style, no inline handlers
    assert "https://" not in html and "http://" not in html  # nothing from elsewhere


def test_assets_are_served_and_unknown_ones_are_404(aws_env: Any) -> None:
    status, headers, js = page("dashboard-asset")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    modules = [p.name for p in STATIC.glob("*.js")] + ["constants.js"]
    for name in modules:
        status, headers, js = page("dashboard-asset", pathParameters={"name": name}, path=f"/dashboard/assets/{name}")
        assert status == 200 and headers["content-type"].startswith("text/javascript"), name
        assert ".innerHTML" not in js and "eval(" not in js and "import(" not in js, name
    for name in ("nope.js", "index.html", "../app.py"):
        status, _, _ = page("dashboard-asset", pathParameters={"name": name}, path=f"/dashboard/assets/{name}")
        assert status == 404, name


def test_the_page_offers_every_scope_and_event_type_the_api_knows(aws_env: Any) -> None:
    from tahsil.kernel.principal import SCOPES
    from tahsil.webhooks import rendering

    _, _, js = page("dashboard-asset", pathParameters={"name": "constants.js"}, path="/dashboard/assets/constants.js")
    for name in list(SCOPES) + list(rendering.EVENT_TYPES):
        assert f'"{name}"' in js, name
