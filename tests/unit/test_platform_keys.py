"""API keys: create (shown once), list, roll, revoke; scopes, publishable keys, IP allowlists."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.calls import authorize, call, create_key


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


def credential_rows() -> list[dict[str, Any]]:
    from tahsil.store import dal

    client = dal._ddb()
    return [dal.load(i) for page in client.get_paginator("scan").paginate(TableName=dal.credentials_table())
            for i in page["Items"]]


# ------------------------------------------------------------------ create and list


def test_a_new_key_is_shown_once_and_listed_by_prefix_and_last4_only(sk: str) -> None:
    created = create_key(sk, name="Checkout server", scopes=["payments:create", "payments:read"],
                         ip_allowlist=["185.62.75.24/32", "2001:db8::/48"])
    assert created.status == 201
    key = created.data
    assert key["secret"].startswith("sk_test_") and key["status"] == "active" and key["mode"] == "test"
    assert key["prefix"] == "sk_test_" and key["last4"] == key["secret"][-4:]
    assert key["scopes"] == ["payments:create", "payments:read"]
    assert key["ip_allowlist"] == ["185.62.75.24/32", "2001:db8::/48"]
    assert key["last_used_at"] is None and key["created_at"]

    listing = call("api-keys-list", sk)
    assert listing.status == 200
    raw = json.dumps(listing.body)
    assert key["secret"] not in raw
    assert all("secret" not in k and "signing_secret" not in k for k in listing.data["api_keys"])
    mine = next(k for k in listing.data["api_keys"] if k["id"] == key["id"])
    assert mine["prefix"] == "sk_test_" and mine["last4"] == key["last4"] and "secret" not in mine
    assert len(listing.data["api_keys"]) == 3  # the merchant's first two test keys and this one
    assert {k["mode"] for k in listing.data["api_keys"]} == {"test"}
    # The table holds the keyed hash, never the key.
    assert key["secret"] not in json.dumps(credential_rows())


def test_a_key_cannot_be_created_without_scopes_or_with_an_unknown_one(sk: str) -> None:
    for body, param in [({"name": "k", "scopes": []}, "scopes"), ({"name": "k"}, "scopes"),
                        ({"name": "k", "scopes": ["payments:create", "payments:fly"]}, "scopes.1")]:
        answer = call("api-keys-create", sk, body=body)
        assert answer.status == 400, body
        assert answer.error["param"] == param


@pytest.mark.parametrize(("entry", "index"), [("10.0.0.300/32", 1), ("10.0.0.1/24", 1), ("2001:db8::/129", 1), ("nope", 1)])
def test_an_invalid_cidr_is_a_400_naming_the_entry(sk: str, entry: str, index: int) -> None:
    answer = create_key(sk, ip_allowlist=["192.0.2.0/24", entry])
    assert answer.status == 400
    assert answer.error["param"] == f"ip_allowlist.{index}"
    assert entry in answer.error["message"]


def test_a_key_cannot_grant_scopes_it_lacks_nor_a_test_key_mint_a_live_key(sk: str, merchant: dict[str, Any]) -> None:
    narrow = create_key(sk, scopes=["keys:write"]).data["secret"]
    refused = create_key(narrow, scopes=["payments:create"])
    assert refused.status == 403 and "payments:create" in refused.error["message"]
    live = create_key(sk, mode="live")
    assert live.status == 403 and live.error["param"] == "mode"
    made = create_key(merchant["keys"]["live"]["secret"], mode="live")
    assert made.status == 201 and made.data["secret"].startswith("sk_live_")


def test_keys_made_by_ops_have_every_scope(merchant: dict[str, Any]) -> None:
    from tahsil.kernel.principal import ALL_SCOPES

    rows = [r for r in credential_rows() if r["pk"].startswith("KEY#")]
    assert len(rows) == 4
    assert all(set(r["scopes"]) == ALL_SCOPES for r in rows)


def test_key_management_stays_inside_its_mode_both_ways(sk: str, merchant: dict[str, Any]) -> None:
    live_sk = merchant["keys"]["live"]["secret"]
    test_key = create_key(sk, name="test server").data
    live_key = create_key(live_sk, name="live server").data
    assert {k["mode"] for k in call("api-keys-list", sk).data["api_keys"]} == {"test"}
    assert {k["mode"] for k in call("api-keys-list", live_sk).data["api_keys"]} == {"live"}
    assert live_key["id"] not in json.dumps(call("api-keys-list", sk).body)
    for key, other, mode in [(sk, live_key, "live"), (live_sk, test_key, "test")]:
        listed = call("api-keys-list", key, query={"mode": mode})
        assert listed.status == 403 and listed.error["param"] == "mode", listed.body
        made = create_key(key, mode=mode)
        assert made.status == 403 and made.error["param"] == "mode"
        rolled = call("api-keys-roll", key, path_id=other["id"], drop_body=True)
        assert rolled.status == 404 and rolled.error["code"] == "NOT_FOUND"
        revoked = call("api-keys-revoke", key, path_id=other["id"])
        assert revoked.status == 404 and revoked.error["code"] == "NOT_FOUND"
    # Nothing changed across modes: both keys still work.
    assert authorize(test_key["secret"]).status == 200
    assert call("payments-list", live_key["secret"]).status == 200
    listed = {k["id"]: k for k in call("api-keys-list", live_sk).data["api_keys"]}
    assert listed[live_key["id"]]["status"] == "active"


# ------------------------------------------------------------------ scopes


def test_a_missing_scope_is_a_403_naming_it(sk: str) -> None:
    reader = create_key(sk, scopes=["payments:read"]).data["secret"]
    answer = authorize(reader)
    assert answer.status == 403
    assert answer.error["code"] == "MISSING_SCOPE" and answer.error["required_scope"] == "payments:create"
    assert "payments:create" in answer.error["message"]
    assert call("payments-list", reader).status == 200
    refund_only = create_key(sk, scopes=["refunds:create"]).data["secret"]
    pid = authorize(sk).data["id"]
    assert call("payments-capture", refund_only, path_id=pid, body={}).error["required_scope"] == "payments:write"


def test_every_v1_route_in_the_template_has_a_scope() -> None:
    from tahsil.api import auth
    from tahsil.kernel.principal import SCOPES
    from tahsil_local import template

    for fn in template.functions(template.load()):
        for route in fn.routes:
            if route.method == "ANY":  # RouteFallbackFunction: 405 / 404 only, never a key's business
                continue
            if route.path.startswith("/v1/") and (route.method, route.path) not in auth.OPEN_ROUTES:
                assert auth.required_scope(route.method, route.path) in SCOPES, (route.method, route.path)


def test_a_publishable_key_works_only_on_public_endpoints(sk: str) -> None:
    pk = create_key(sk, type="publishable", scopes=["payment_intents:read"]).data
    assert pk["secret"].startswith("pk_test_")
    answer = call("payments-list", pk["secret"])
    assert answer.status == 403 and answer.error["code"] == "PUBLISHABLE_KEY_NOT_ALLOWED"


# ------------------------------------------------------------------ roll and revoke


def test_a_rolled_key_fails_at_once_and_its_successor_works(sk: str) -> None:
    old = create_key(sk, scopes=["payments:create", "payments:read", "keys:write"], ip_allowlist=["198.51.100.0/24"]).data
    assert authorize(old["secret"]).status == 200
    rolled = call("api-keys-roll", sk, path_id=old["id"], drop_body=True)
    assert rolled.status == 200
    new = rolled.data
    assert new["id"] != old["id"] and new["secret"] != old["secret"]
    assert new["scopes"] == old["scopes"] and new["ip_allowlist"] == old["ip_allowlist"]
    refused = authorize(old["secret"])
    assert refused.status == 401 and "rolled" in refused.error["message"]
    assert authorize(new["secret"]).status == 200
    listed = {k["id"]: k for k in call("api-keys-list", sk).data["api_keys"]}
    assert listed[old["id"]]["status"] == "rolled" and listed[old["id"]]["rolled_to"] == new["id"]
    again = call("api-keys-roll", sk, path_id=old["id"], drop_body=True)
    assert again.status == 409


def test_a_roll_with_expires_in_keeps_the_old_key_until_then(sk: str) -> None:
    from tahsil.store import dal

    old = create_key(sk).data
    new = call("api-keys-roll", sk, path_id=old["id"], body={"expires_in": 3600}).data
    assert authorize(old["secret"]).status == 200 and authorize(new["secret"]).status == 200
    listed = {k["id"]: k for k in call("api-keys-list", sk).data["api_keys"]}
    assert listed[old["id"]]["status"] == "active" and listed[old["id"]]["expires_at"]
    # An hour later (moved in the table rather than waiting): refused.
    row = next(r for r in credential_rows() if r.get("key_id") == old["id"])
    dal.update(dal.credentials_table(), row["pk"], "KEY", "SET expires_at = :t", vals=dal.values(t=int(time.time()) - 1))
    refused = authorize(old["secret"])
    assert refused.status == 401 and "grace period" in refused.error["message"]
    listed = {k["id"]: k for k in call("api-keys-list", sk).data["api_keys"]}
    assert listed[old["id"]]["status"] == "expired"


def test_a_roll_grace_longer_than_24_hours_is_a_400(sk: str) -> None:
    old = create_key(sk).data
    answer = call("api-keys-roll", sk, path_id=old["id"], body={"expires_in": 86401})
    assert answer.status == 400 and answer.error["param"] == "expires_in"


def test_a_revoked_key_fails_at_once(sk: str) -> None:
    key = create_key(sk).data
    assert authorize(key["secret"]).status == 200
    revoked = call("api-keys-revoke", sk, path_id=key["id"])
    assert revoked.status == 200 and revoked.data["status"] == "revoked" and revoked.data["revoked_at"]
    assert authorize(key["secret"]).status == 401


def test_another_merchants_key_is_not_found(sk: str) -> None:
    from tahsil.console import ops

    other = ops.create_merchant("Other")["keys"]["test"]["secret"]
    theirs = create_key(other).data
    assert call("api-keys-revoke", sk, path_id=theirs["id"]).status == 404
    assert call("api-keys-roll", sk, path_id="not-a-key", drop_body=True).status == 400


# ------------------------------------------------------------------ IP allowlist


def test_a_call_from_outside_the_allowlist_is_a_403(sk: str) -> None:
    key = create_key(sk, ip_allowlist=["203.0.113.0/24", "2001:db8::/32"]).data["secret"]
    assert authorize(key, source_ip="203.0.113.9").status == 200
    assert authorize(key, source_ip="2001:db8::1").status == 200
    outside = authorize(key, source_ip="198.51.100.7")
    assert outside.status == 403 and outside.error["code"] == "IP_NOT_ALLOWED"
    assert "198.51.100.7" in outside.error["message"]


def test_the_source_address_is_api_gateways_never_a_client_header(sk: str) -> None:
    key = create_key(sk, ip_allowlist=["203.0.113.9/32"]).data["secret"]
    spoofed = authorize(key, source_ip="198.51.100.7",
                        headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"})
    assert spoofed.status == 403
