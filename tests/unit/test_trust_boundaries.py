"""Trust boundaries in template.yaml (issue 28): who may use which KMS key, and nobody else.

The table below is the contract. A function that gains a key, an action on a key, or a policy that names a
key in a way this walk does not understand fails here, and so does a function listed here that lost its
grant (the table would then overstate what a role can do). docs/operations.md ("Trust boundaries") is the
same table in prose, with the reasons.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

KEYS = ("CardDataKey", "SecretsKey", "ConnectorSecretsKey")

# key -> function -> the KMS actions its role may use on that key. Every other function: none.
KMS_GRANTS: dict[str, dict[str, frozenset[str]]] = {
    # Card numbers. The functions that take a card seal it (GenerateDataKey). None may open one (Decrypt): a card
    # goes to the processor only from the request that carries it (a same-key retry brings it again), and the
    # recovery worker never re-sends an authorization. Decrypting is for an operator's incident role alone.
    "CardDataKey": {
        "AuthorizePaymentFunction": frozenset({"kms:GenerateDataKey"}),
        "SalePaymentFunction": frozenset({"kms:GenerateDataKey"}),
        "ConfirmPaymentIntentFunction": frozenset({"kms:GenerateDataKey"}),
    },
    # Webhook signing secrets and payout details (the pepper is read through Secrets Manager: the key policy).
    "SecretsKey": {
        "CreateWebhookEndpointFunction": frozenset({"kms:GenerateDataKey"}),
        "RotateWebhookSecretFunction": frozenset({"kms:GenerateDataKey"}),
        "UpdateAccountFunction": frozenset({"kms:GenerateDataKey"}),
        "WebhookDeliverFunction": frozenset({"kms:Decrypt"}),
        "WebhookRetryFunction": frozenset({"kms:Decrypt"}),
    },
    # Processor credentials (Secrets Manager secrets tahsil/<stage>/connectors/*), through Secrets Manager only.
    "ConnectorSecretsKey": {fn: frozenset({"kms:Decrypt"}) for fn in (
        "AuthorizePaymentFunction", "SalePaymentFunction", "CapturePaymentFunction", "VoidPaymentFunction",
        "RefundPaymentFunction", "ConfirmPaymentIntentFunction", "ProcessorRecoveryFunction",
        "AdyenNotificationsFunction",
        "ExpiryFunction", "ExpiryRetryFunction")},  # an expired live authorization is cancelled at its processor
}
# Grants that must carry a condition, and the condition key that must be in it.
CONDITIONS: dict[tuple[str, str], str] = {
    # webhook functions open secrets without a merchant context only: never a payout account number
    ("SecretsKey", "WebhookDeliverFunction"): "kms:EncryptionContext:tahsil:merchant",
    ("SecretsKey", "WebhookRetryFunction"): "kms:EncryptionContext:tahsil:merchant",
    **{("ConnectorSecretsKey", fn): "kms:ViaService" for fn in KMS_GRANTS["ConnectorSecretsKey"]},
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from tahsil_local import template

    return template.load()


def _refs(value: Any) -> set[str]:
    from tests.support.template import _refs as refs

    return refs(value)


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement.get("Action") or []
    return {action} if isinstance(action, str) else set(action)


def _statements(doc: dict[str, Any], policies: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, statement) for every IAM statement a function's Policies hold, managed policies followed."""
    found: list[tuple[str, dict[str, Any]]] = []
    for policy in policies or []:
        if isinstance(policy, dict) and "Ref" in policy and doc["Resources"].get(policy["Ref"], {}).get("Type") == \
                "AWS::IAM::ManagedPolicy":
            document = doc["Resources"][policy["Ref"]]["Properties"]["PolicyDocument"]
            found += [(policy["Ref"], s) for s in document["Statement"]]
        elif isinstance(policy, dict) and "Statement" in policy:
            found += [("inline", s) for s in policy["Statement"]]
        elif isinstance(policy, dict):  # a SAM policy template: it must not name a key (the walk cannot see its actions)
            named = _refs(policy) & set(KEYS)
            assert not named, f"SAM policy template {next(iter(policy))} names {named}: write a Statement instead"
    return found


def _grants(doc: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    grants: dict[str, dict[str, set[str]]] = {k: {} for k in KEYS}
    conditions: dict[tuple[str, str], set[str]] = {}
    for fn, res in doc["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for where, statement in _statements(doc, res["Properties"].get("Policies") or []):
            kms = {a for a in _actions(statement) if a.lower().startswith("kms:")}
            if not kms:
                continue
            assert statement.get("Effect") == "Allow", f"{fn} ({where}): only Allow statements are expected"
            resource = statement.get("Resource")
            assert resource not in ("*", ["*"]), f"{fn} ({where}): KMS actions on every key"
            keys = _refs(resource) & set(KEYS)
            assert keys, f"{fn} ({where}): KMS actions on {resource!r}, which is none of {KEYS}"
            for key in keys:
                grants[key].setdefault(fn, set()).update(kms)
                conditions.setdefault((key, fn), set()).update(
                    name for test in (statement.get("Condition") or {}).values() for name in test)
    _grants.conditions = conditions  # type: ignore[attr-defined]
    return grants


def test_each_kms_key_is_used_by_exactly_the_functions_listed(doc: dict[str, Any]) -> None:
    grants = _grants(doc)
    for key in KEYS:
        actual = {fn: frozenset(actions) for fn, actions in grants[key].items()}
        extra = {fn: sorted(a) for fn, a in actual.items() if fn not in KMS_GRANTS[key]}
        assert not extra, f"{key}: functions that may use it and are not in KMS_GRANTS: {extra}"
        assert actual == KMS_GRANTS[key], f"{key}: the template grants {actual}, the table says {KMS_GRANTS[key]}"


def test_grants_that_need_a_condition_carry_it(doc: dict[str, Any]) -> None:
    _grants(doc)
    seen = _grants.conditions  # type: ignore[attr-defined]
    for (key, fn), condition in CONDITIONS.items():
        assert condition in seen.get((key, fn), set()), f"{fn} uses {key} without the condition {condition}"


def test_no_function_may_decrypt_card_data(doc: dict[str, Any]) -> None:
    """Only a function that sends a stored card to a processor would need to; since recovery stopped re-sending
    authorizations (a same-key retry carries the card), none does."""
    decrypting = {fn for fn, actions in _grants(doc)["CardDataKey"].items() if "kms:Decrypt" in actions}
    assert decrypting == set()
    for fn in ("CapturePaymentFunction", "VoidPaymentFunction", "RefundPaymentFunction", "AdyenNotificationsFunction",
               "ProcessorRecoveryFunction", "ExpiryFunction"):
        assert fn not in _grants(doc)["CardDataKey"], f"{fn} never sends a card number anywhere"


def test_no_other_iam_resource_names_a_key(doc: dict[str, Any]) -> None:
    """Roles, inline policies and managed policies no function uses must not reach a key behind the table's back."""
    used_managed = {p["Ref"] for res in doc["Resources"].values() if res["Type"] == "AWS::Serverless::Function"
                    for p in res["Properties"].get("Policies") or [] if isinstance(p, dict) and "Ref" in p}
    for name, res in doc["Resources"].items():
        kind = res["Type"]
        if kind in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::Serverless::StateMachine"):
            if kind == "AWS::IAM::ManagedPolicy" and name in used_managed:
                continue  # walked above, per function
            assert not (_refs(res["Properties"]) & set(KEYS)), f"{name} ({kind}) names a KMS key"


def test_key_policies_leave_use_to_iam_and_bind_card_keys_to_a_merchant(doc: dict[str, Any]) -> None:
    for key in KEYS:
        for statement in doc["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]:
            actions = _actions(statement)
            assert "kms:*" not in actions, f"{key}: kms:* in its policy"
            uses = actions & {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:GenerateDataKey*"}
            if not uses:
                continue
            text = json.dumps(statement)
            # every use is bounded: to this stack's roles, or to Secrets Manager acting for the account
            assert "aws:PrincipalArn" in text or "kms:ViaService" in text, f"{key}: {statement.get('Sid')} is unbounded"
    connector = doc["Resources"]["ConnectorSecretsKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert all("kms:ViaService" in json.dumps(s) for s in connector if _actions(s) & {"kms:Decrypt"}), \
        "processor credentials open through Secrets Manager only"
    assert doc["Globals"]["Function"]["Environment"]["Variables"]["CONNECTOR_SECRETS_KEY_ID"] == {"Ref": "ConnectorSecretsKey"}


def test_the_runbook_names_every_function_in_its_trust_boundaries_table(doc: dict[str, Any]) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    table = text.split("### Trust boundaries", 1)[1].split("\n### ", 1)[0]
    missing = [fn for fn, res in doc["Resources"].items()
               if res["Type"] == "AWS::Serverless::Function" and f"`{fn}`" not in table]
    assert not missing, f"docs/operations.md, Trust boundaries: add {missing}"
    for key in KEYS:
        assert f"`{key}`" in table
