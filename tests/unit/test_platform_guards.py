"""Credential guards (seed 000): enforced in the data-access layer, reported with a legacy audit."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.support.calls import call

RULES = {
    "api_keys_no_plaintext_secret": ("api_credentials", "check", "block"),
    "api_keys_unique_hash": ("api_credentials", "unique", "block"),
    "webhook_secrets_hashed": ("webhook_endpoints", "check", "block"),
    "credential_scope_required": ("api_credentials", "check", "block"),
    "ip_allowlist_valid_cidr": ("api_credentials", "check", "warn"),
}


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


def raw_put(item: dict[str, Any]) -> None:
    """Straight into the table, past the data-access layer (a legacy row, or another tool's)."""
    from tahsil.store import dal

    dal._ddb().put_item(TableName=dal.credentials_table(), Item=dal.dump(item))


def key_row(merchant: dict[str, Any], **over: Any) -> dict[str, Any]:
    from tahsil.identity import keys

    _, item, _ = keys.new_key_item({"merchant_id": merchant["merchant_id"], "name": "Test Store",
                                    "api_version": "2026-06-14.basra"}, mode="test", key_type="secret", name="legacy",
                                   scopes=["payments:read"])
    item.update(over)
    return {k: v for k, v in item.items() if v is not None}


def test_a_fresh_account_is_healthy_with_five_installed_rules(sk: str) -> None:
    answer = call("credential-guards-get", sk)
    assert answer.status == 200
    report = answer.data
    assert report["healthy"] is True and report["installed"] == report["total"] == 5 and report["legacy_issues"] == 0
    assert {r["name"]: (r["table"], r["type"], r["enforcement"]) for r in report["rules"]} == RULES
    assert all(r["status"] == "installed" for r in report["rules"])


def test_the_audit_catches_bad_rows_written_straight_into_the_table(merchant: dict[str, Any], sk: str) -> None:
    leaked = "sk_test_" + "L" * 32
    raw_put(key_row(merchant, secret=leaked))
    raw_put(key_row(merchant, scopes=[]))
    raw_put(key_row(merchant, ip_allowlist=["10.0.0.300/8"]))
    twin = key_row(merchant)
    raw_put(twin)
    raw_put({**twin, "pk": "KEY#copy", "key_id": "key_twin00000000000000"})
    raw_put({"pk": "WHE#we_legacy0000000000000", "sk": "WHE", "id": "we_legacy0000000000000",
             "merchant_id": merchant["merchant_id"], "mode": "test", "secret": "whsec_" + "A" * 40})

    report = call("credential-guards-get", sk).data
    assert report["healthy"] is False
    counts = {r["name"]: r["legacy_issues"] for r in report["rules"]}
    assert counts == {"api_keys_no_plaintext_secret": 1, "credential_scope_required": 1, "ip_allowlist_valid_cidr": 1,
                      "api_keys_unique_hash": 3, "webhook_secrets_hashed": 1}
    # (unique: the copy is not under its own hash, and both rows share one hash.)
    assert leaked not in json.dumps(report) and "whsec_" not in json.dumps(report)
    cidr = next(i for i in report["legacy"] if i["rule"] == "ip_allowlist_valid_cidr")
    assert cidr["enforcement"] == "warn" and "10.0.0.300/8" in cidr["problem"]
    plain = next(i for i in report["legacy"] if i["rule"] == "api_keys_no_plaintext_secret")
    assert plain["row"]["kind"] == "api_key" and plain["row"]["prefix"] == "sk_test_"


def test_another_merchants_rows_are_not_in_my_report(merchant: dict[str, Any], sk: str) -> None:
    raw_put(key_row({"merchant_id": "mer_someoneelse0000000"}, scopes=[]))
    assert call("credential-guards-get", sk).data["healthy"] is True


def test_block_rules_stop_the_write_in_the_data_access_layer(merchant: dict[str, Any]) -> None:
    from tahsil.store import dal
    from tahsil.store.guards import GuardViolation

    table = dal.credentials_table()
    cases = [
        (key_row(merchant, secret="sk_test_" + "P" * 32), "api_keys_no_plaintext_secret"),
        (key_row(merchant, scopes=[]), "credential_scope_required"),
        (key_row(merchant, scopes=["payments:fly"]), "credential_scope_required"),
        (key_row(merchant, pk="KEY#elsewhere"), "api_keys_unique_hash"),
        ({"pk": "WHE#we_x", "sk": "WHE", "signing_secret": "whsec_" + "B" * 40}, "webhook_secrets_hashed"),
        ({"pk": "WHE#we_y", "sk": "WHE"}, "webhook_secrets_hashed"),
    ]
    for row, rule in cases:
        with pytest.raises(GuardViolation) as caught:
            dal.put(table, row, condition="attribute_not_exists(pk)")
        assert caught.value.rule == rule
    with pytest.raises(GuardViolation) as caught:
        dal.put(table, key_row(merchant))  # a key row written without attribute_not_exists(pk)
    assert caught.value.rule == "api_keys_unique_hash"
    with pytest.raises(GuardViolation):
        dal.update(table, "KEY#abc", "KEY", "SET signing_secret = :s", vals=dal.values(s="tss_" + "x" * 43))
    with pytest.raises(GuardViolation):
        dal.update(table, "KEY#abc", "KEY", "SET notes = :s", vals=dal.values(s="sk_live_" + "Q" * 32))
    with pytest.raises(GuardViolation):
        dal.update(table, "KEY#abc", "KEY", "SET scopes = :s", vals=dal.values(s=[]))
    with pytest.raises(GuardViolation):
        dal.transact([dal.put_action(table, key_row(merchant, scopes=[]))])
    sealed = {"pk": "WHE#we_z", "sk": "WHE", "secret_sealed": {"alg": "AES-256-GCM", "ciphertext": "abc", "iv": "x",
                                                                 "wrapped_key": "y"}}
    dal.put(table, sealed, condition="attribute_not_exists(pk)")  # encrypted: allowed


def test_the_warn_rule_logs_and_lets_the_write_through(merchant: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    from tahsil.store import dal

    row = key_row(merchant, ip_allowlist=["not-a-cidr"])
    with caplog.at_level(logging.WARNING):
        dal.put(dal.credentials_table(), row, condition="attribute_not_exists(pk)")
    assert dal.get(dal.credentials_table(), row["pk"], "KEY") is not None
    assert any("credential guard warning" in r.getMessage() for r in caplog.records)


def test_the_other_modes_rows_are_not_in_my_report(merchant: dict[str, Any], sk: str) -> None:
    raw_put({**key_row(merchant, scopes=[]), "mode": "live", "prefix": "sk_live_"})
    assert call("credential-guards-get", sk).data["healthy"] is True
    live = call("credential-guards-get", merchant["keys"]["live"]["secret"]).data
    assert live["healthy"] is False and [i["row"]["mode"] for i in live["legacy"]] == ["live"]
