"""The console's server side through the local gateway: Cognito sign-in (moto's JWKS, over HTTP) and the ops commands."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.support.gateway import Gateway
from tests.support.local_gateway import fresh_card, tahsil


def session(gw: Gateway, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{gw.url}/dashboard/session", json=body, timeout=30)


def as_user(gw: Gateway, token: str, method: str, path: str, mode: str = "test", **kwargs: Any) -> requests.Response:
    return requests.request(method, gw.url + path, headers={"Authorization": f"Bearer {token}", "Tahsil-Mode": mode},
                            timeout=30, **kwargs)


def live_sale(gw: Gateway, key: str) -> requests.Response:
    return gw.call("POST", "/v1/payments/sale", key=key, json_body={
        "amount": 1500, "currency": "USD",
        "card": {"number": fresh_card(), "exp_month": 12, "exp_year": 2030, "cvv": "123"}})


def test_the_demo_user_signs_in_and_the_api_checks_the_token_against_the_pools_jwks(gateway: Gateway) -> None:
    creds = gateway.state["dashboard"]
    assert creds["url"] == f"{gateway.url}/dashboard" and creds["username"] == "demo@tahsil.local"
    answer = session(gateway, {"email": creds["username"], "password": creds["password"]})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    data = answer.json()["data"]
    token = data["access_token"]
    assert data["role"] == "owner"
    me = as_user(gateway, token, "GET", "/v1/account")
    assert me.status_code == 200 and me.json()["data"]["id"] == gateway.state["merchant_id"]
    head, body, sig = token.split(".")
    forged = head + "." + body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert as_user(gateway, forged, "GET", "/v1/account").status_code == 401
    assert session(gateway, {"email": creds["username"], "password": "wrong-Password-1"}).status_code == 401
    # Renewed with the refresh token; signed out (Cognito's global sign-out), the refresh token is dead too.
    renewed = session(gateway, {"action": "refresh", "refresh_token": data["refresh_token"]})
    assert renewed.status_code == 200
    assert as_user(gateway, renewed.json()["data"]["access_token"], "GET", "/v1/account").status_code == 200
    out = requests.post(f"{gateway.url}/dashboard/session", json={"action": "sign_out"}, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 200
    assert session(gateway, {"refresh_token": data["refresh_token"]}).status_code == 401


def test_an_operator_approves_go_live_with_the_ops_command(gateway: Gateway) -> None:
    created = json.loads(tahsil(gateway, "merchants", "create", "--name", "Go Live Shop").stdout)
    merchant, test, live = created["merchant_id"], created["keys"]["test"]["secret"], created["keys"]["live"]["secret"]
    refused = live_sale(gateway, live)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "LIVE_MODE_NOT_ENABLED"

    nothing = tahsil(gateway, "go-live", "approve", merchant, check=False)
    assert nothing.returncode != 0 and "no go-live review waiting" in nothing.stderr
    assert gateway.call("POST", "/v1/go-live/reviews", key=test, json_body={"note": "hi"}).status_code == 201
    blocked = tahsil(gateway, "go-live", "approve", merchant, check=False)
    assert blocked.returncode != 0 and "checklist items fail" in blocked.stderr

    approved = json.loads(tahsil(gateway, "go-live", "approve", merchant, "--force", "--reason", "verified offline").stdout)
    assert approved["status"] == "approved" and approved["decided_by"] == "ops@tahsil.example"
    # Approved: past the go-live gate, on to the processor, which the operator has not set yet
    # (tests/integration/test_connectors_gateway.py sets one).
    after = live_sale(gateway, live)
    assert after.status_code == 403 and after.json()["error"]["code"] == "LIVE_CONNECTOR_NOT_CONFIGURED"
    status = gateway.call("GET", "/v1/go-live", key=test).json()["data"]
    assert status["status"] == "approved" and status["latest_review"]["reason"] == "verified offline"


def test_an_operator_rejects_a_review_and_the_merchant_reads_why(gateway: Gateway) -> None:
    created = json.loads(tahsil(gateway, "merchants", "create", "--name", "Rejected Shop").stdout)
    test = created["keys"]["test"]["secret"]
    gateway.call("POST", "/v1/go-live/reviews", key=test)
    no_reason = tahsil(gateway, "go-live", "reject", created["merchant_id"], check=False)
    assert no_reason.returncode != 0 and "reason" in no_reason.stderr
    tahsil(gateway, "go-live", "reject", created["merchant_id"], "--reason", "the payout account is missing")
    latest = gateway.call("GET", "/v1/go-live", key=test).json()["data"]["latest_review"]
    assert latest["status"] == "rejected" and latest["reason"] == "the payout account is missing"


def test_users_create_gives_a_temporary_password_changed_at_first_sign_in(gateway: Gateway) -> None:
    created = json.loads(tahsil(gateway, "merchants", "create", "--name", "Staffed Shop").stdout)
    user = json.loads(tahsil(gateway, "users", "create", "--merchant-id", created["merchant_id"],
                             "--email", "owner@staffed.example").stdout)
    assert user["password_is_temporary"] is True
    first = session(gateway, {"email": "owner@staffed.example", "password": user["temporary_password"]}).json()["data"]
    assert first["challenge"] == "NEW_PASSWORD_REQUIRED"
    done = session(gateway, {"email": "owner@staffed.example", "session": first["session"], "new_password": "Staffed-shop-2026"})
    token = done.json()["data"]["access_token"]
    assert as_user(gateway, token, "GET", "/v1/account").json()["data"]["id"] == created["merchant_id"]
    assert user["role"] == "owner"
    viewer = json.loads(tahsil(gateway, "users", "create", "--merchant-id", created["merchant_id"],
                               "--email", "viewer@staffed.example", "--role", "viewer").stdout)
    first = session(gateway, {"email": "viewer@staffed.example", "password": viewer["temporary_password"]}).json()["data"]
    done = session(gateway, {"email": "viewer@staffed.example", "session": first["session"], "new_password": "Viewer-shop-2026"})
    assert done.json()["data"]["role"] == "viewer"
    token = done.json()["data"]["access_token"]
    assert as_user(gateway, token, "GET", "/v1/api-keys").status_code == 200
    refused = as_user(gateway, token, "POST", "/v1/api-keys", json={"name": "k", "scopes": ["payments:read"]})
    assert refused.status_code == 403 and refused.json()["error"]["required_scope"] == "keys:write"
    unknown = tahsil(gateway, "users", "create", "--merchant-id", "mer_NoSuchMerchant0000000", "--email", "x@y.example",
                     check=False)
    assert unknown.returncode != 0 and "no merchant" in unknown.stderr
