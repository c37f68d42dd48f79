"""Payout details are live, owner-only and announced; live powers need an owner whose session passed MFA (issue 28).

- A test key cannot change the payout bank account (403 naming why), and nothing is written.
- A live key with ``payouts:write`` can: the change is audited, announced (``account.updated`` with the old and new
  last four digits, in live mode), holds payouts for the cooling-off period, and is never stored as verified.
- A dashboard owner can, within 15 minutes of passing MFA; a developer keeps everything in test mode.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support.console import (
    PASSWORD,
    call,
    new_user,
    sign_in,
)
from tests.support.lambdas import invoke, load_event

IQD = {"currency": "IQD", "account_holder_name": "Basra Private School LLC", "bank_name": "National Bank of Iraq",
       "iban": "IQ98 NBIQ 8501 2345 6789 012"}
EUR = {"currency": "EUR", "account_holder_name": "Basra Private School LLC", "iban": "DE89 3704 0044 0532 0130 00"}


def _audit(merchant_id: str) -> list[dict[str, Any]]:
    from tahsil.console import profile

    return profile.audit_trail(merchant_id)


def _account_events(merchant_id: str, mode: str) -> list[dict[str, Any]]:
    from tahsil.kernel.events import event_partition, payload_of
    from tahsil.store import dal

    rows = dal.query_partition(dal.payments_table(), event_partition(f"{merchant_id}#{mode}"), "")
    return [payload_of(r) for r in rows if r["type"] == "account.updated"]


def _mfa_session(merchant_id: str, email: str, role: str = "owner") -> str:
    """Sign a user in with TOTP (set up first, then the challenge answered): a session that just passed MFA."""
    from tahsil.identity import sessions

    new_user(merchant_id, email, role=role)
    first = sign_in(email)
    sessions.totp_setup(first)
    sessions.totp_verify(first, "123456")  # moto accepts any 6 digits
    challenge = sessions.sign_in(email, PASSWORD)
    assert challenge["challenge"] == "SOFTWARE_TOKEN_MFA"
    return str(sessions.answer_mfa(email, challenge["session"], "654321")["access_token"])


# ------------------------------------------------------------------ API keys


def test_a_test_key_cannot_change_the_payout_account_and_nothing_is_written(merchant: dict[str, Any]) -> None:
    test = merchant["keys"]["test"]["secret"]
    for body in ({"payout_destination": IQD}, {"payout_destination": None}):
        refused = call("account-update", test, body=body)
        assert refused.status == 403 and refused.error["code"] == "LIVE_KEY_REQUIRED", refused.body
        assert "live" in refused.error["message"] and "test key" in refused.error["message"]
        assert refused.error["required_scope"] == "payouts:write"
    assert call("account-get", test).data["payout_destination"] is None
    assert _audit(merchant["merchant_id"]) == [] and _account_events(merchant["merchant_id"], "live") == []
    assert call("account-update", test, body={"legal_name": "Basra Private School LLC"}).status == 200  # the profile is not


def test_a_live_key_needs_the_payouts_scope(merchant: dict[str, Any]) -> None:
    live = merchant["keys"]["live"]["secret"]
    made = call("api-keys-create", live, body={"name": "no payouts", "scopes": ["account:read", "account:write"]})
    assert made.status == 201, made.body
    refused = call("account-update", made.data["secret"], body={"payout_destination": IQD})
    assert refused.status == 403 and refused.error["code"] == "MISSING_SCOPE"
    assert refused.error["required_scope"] == "payouts:write"


def test_a_live_change_is_audited_announced_held_and_unverified(merchant: dict[str, Any]) -> None:
    from tahsil.console import profile

    live = merchant["keys"]["live"]["secret"]
    first = call("account-update", live, body={"payout_destination": IQD})
    assert first.status == 200, first.body
    before = dt.datetime.now(dt.UTC)
    second = call("account-update", live, body={"payout_destination": EUR})
    assert second.status == 200, second.body
    payout = second.data["payout_destination"]
    # never verified on the caller's word, and held for the cooling-off period
    assert payout["status"] == "unverified" and payout["verified_at"] is None and payout["last4"] == "3000"
    held = dt.datetime.fromisoformat(payout["hold_until"].replace("Z", "+00:00"))
    assert abs((held - before) - profile.PAYOUT_COOLING_OFF) < dt.timedelta(minutes=1)
    # audited: who, when, the old and new last four
    trail = _audit(merchant["merchant_id"])
    assert [row["action"] for row in trail] == ["payout_destination.updated"] * 2
    newest = trail[0]
    assert (newest["old"]["last4"], newest["new"]["last4"]) == ("9012", "3000")
    assert newest["actor_type"] == "secret" and newest["actor"].startswith("key_") and newest["mode"] == "live"
    assert newest["hold_until"] == payout["hold_until"]
    # announced, in live mode, with the old and new last four; the sequence is the account's version
    events = _account_events(merchant["merchant_id"], "live")
    assert len(events) == 2 and _account_events(merchant["merchant_id"], "test") == []
    last = max(events, key=lambda e: e["sequence"])
    assert last["type"] == "account.updated" and last["livemode"] is True
    assert last["data"]["object"]["payout_destination"]["last4"] == "3000"
    assert last["data"]["previous_attributes"]["payout_destination"]["last4"] == "9012"
    assert "DE89" not in str(last) and "370400440532013000" not in str(last)
    # an operator verifies it, on the record
    shown = profile.verify_payout(merchant["merchant_id"], operator="ops@tahsil", reason="bank letter checked",
                                  payout_id=payout["id"])
    assert shown["status"] == "verified"
    assert _audit(merchant["merchant_id"])[0]["action"] == "payout_destination.verified"


def test_removing_the_payout_account_is_a_change_too(merchant: dict[str, Any]) -> None:
    live = merchant["keys"]["live"]["secret"]
    assert call("account-update", live, body={"payout_destination": IQD}).status == 200
    removed = call("account-update", live, body={"payout_destination": None})
    assert removed.status == 200 and removed.data["payout_destination"] is None
    assert _audit(merchant["merchant_id"])[0].get("new") is None
    last = max(_account_events(merchant["merchant_id"], "live"), key=lambda e: e["sequence"])
    assert last["data"]["previous_attributes"]["payout_destination"]["last4"] == "9012"


def test_account_updated_is_an_event_type_endpoints_can_subscribe_to() -> None:
    from tahsil.webhooks import rendering

    assert "account.updated" in rendering.EVENT_TYPES


# ------------------------------------------------------------------ dashboard sessions


def test_an_owner_changes_payouts_only_within_15_minutes_of_mfa(jwks: list[str], merchant: dict[str, Any],  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from tahsil.identity import cognito

    plain = sign_in(new_user(merchant["merchant_id"], "owner@shop.example"))  # password only
    refused = call("account-update", token=plain, body={"payout_destination": IQD})
    assert refused.status == 403 and refused.error["code"] == "MFA_STEP_UP_REQUIRED", refused.body
    assert "sign in again" in refused.error["message"]

    stepped = _mfa_session(merchant["merchant_id"], "owner2@shop.example")
    done = call("account-update", token=stepped, body={"payout_destination": IQD})
    assert done.status == 200, done.body
    assert _audit(merchant["merchant_id"])[0]["actor"] == "owner2@shop.example"

    later = time.time() + 16 * 60
    monkeypatch.setattr(cognito.time, "time", lambda: later)  # the MFA is now 16 minutes old
    cognito.SESSIONS.clear()
    monkeypatch.setattr(cognito, "verify", lambda token, now=None, real=cognito.verify: real(token, now=later - 16 * 60))
    stale = call("account-update", token=stepped, body={"payout_destination": EUR})
    assert stale.status == 403 and stale.error["code"] == "MFA_STEP_UP_REQUIRED"


def test_a_developer_cannot_change_payouts_even_after_mfa(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    token = _mfa_session(merchant["merchant_id"], "dev@shop.example", role="developer")
    refused = call("account-update", token=token, body={"payout_destination": IQD})
    assert refused.status == 403 and refused.error["required_scope"] == "account:write"


def _refund(token: str, mode: str) -> Any:
    from tahsil.kernel.ids import new_id

    event = load_event("payments-refund", path_id=new_id("pay"), body={"amount": 100, "reason": "requested_by_customer"})
    for h in ("X-API-Key", "Idempotency-Key"):
        event["headers"].pop(h, None)
        event["multiValueHeaders"].pop(h, None)
    event["headers"] |= {"Authorization": f"Bearer {token}", "Tahsil-Mode": mode}
    event["multiValueHeaders"] |= {"Authorization": [f"Bearer {token}"], "Tahsil-Mode": [mode]}
    return invoke("RefundPaymentFunction", event)


def test_a_developer_keeps_everything_in_test_mode_and_no_live_powers(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    token = _mfa_session(merchant["merchant_id"], "dev@shop.example", role="developer")
    assert call("api-keys-create", token=token, mode="test", body={"name": "ci", "scopes": ["payments:read"]}).status == 201
    assert _refund(token, "test").status == 404  # authorized; the payment does not exist
    live_key = call("api-keys-create", token=token, mode="live", body={"name": "prod", "scopes": ["payments:read"]})
    assert live_key.status == 403 and live_key.error["required_scope"] == "keys:write"
    assert "live mode" in live_key.error["message"]
    live_refund = _refund(token, "live")
    assert live_refund.status == 403 and live_refund.error["required_scope"] == "refunds:create"
    assert call("api-keys-list", token=token, mode="live").status == 200  # reading live stays open


def test_an_owner_uses_live_powers_only_after_mfa(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    plain = sign_in(new_user(merchant["merchant_id"], "owner@shop.example"))
    assert call("api-keys-create", token=plain, mode="test", body={"name": "t", "scopes": ["payments:read"]}).status == 201
    for answer in (call("api-keys-create", token=plain, mode="live", body={"name": "l", "scopes": ["payments:read"]}),
                   _refund(plain, "live")):
        assert answer.status == 403 and answer.error["code"] == "MFA_STEP_UP_REQUIRED", answer.body
    stepped = _mfa_session(merchant["merchant_id"], "owner2@shop.example")
    made = call("api-keys-create", token=stepped, mode="live", body={"name": "l", "scopes": ["payments:read"]})
    assert made.status == 201, made.body
    assert _refund(stepped, "live").status == 404  # past the gate: the payment does not exist


def test_an_operator_changes_a_role_and_the_users_sessions_end(jwks: list[str], merchant: dict[str, Any]) -> None:  # noqa: F811
    from tahsil.identity import cognito, users
    from tahsil.kernel.errors import InvalidRequest

    email = new_user(merchant["merchant_id"], "dev@shop.example", role="developer")
    token = sign_in(email)
    changed = users.set_role(email, "viewer", merchant_id=merchant["merchant_id"])
    assert (changed["previous_role"], changed["role"]) == ("developer", "viewer")
    cognito.SESSIONS.clear()
    assert call("account-get", token=token).status == 401  # signed out everywhere
    viewer = sign_in(email)
    refused = call("api-keys-create", token=viewer, body={"name": "k", "scopes": ["payments:read"]})
    assert refused.status == 403 and "viewer" in refused.error["message"]
    with pytest.raises(InvalidRequest):
        users.set_role(email, "admin")
    with pytest.raises(InvalidRequest):
        users.set_role(email, "owner", merchant_id="mer_someoneelse1")
