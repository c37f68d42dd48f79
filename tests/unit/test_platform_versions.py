"""API versions: explicit version-change transforms, the merchant's pin, the Tahsil-Version header."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tahsil.kernel import versions
from tests.support.calls import CARD, PAYMENT, authorize, call
from tests.support.versions import pin

BASRA_ERROR = {"success": False, "error": {"code": "PAYMENT_DECLINED", "message": "payment declined: insufficient funds (code: 51)",
                                           "param": None, "request_id": "r-1", "decline_code": "51"}}
BASRA_EVENT = {
    "id": "evt_abc123def456", "object": "event", "type": "payment.authorized", "created": "2026-01-24T10:00:00Z",
    "livemode": False, "api_version": "2026-06-14.basra", "sequence": 1,
    "data": {"object": {"id": "pay_xyz789uvw012", "object": "payment", "status": "authorized", "amount": 9999,
                        "currency": "USD", "card_brand": "visa", "card_last4": "4242", "created_at": "2026-01-24T10:00:00Z"},
             "previous_attributes": {}},
    "request": {"id": "r-1", "idempotency_key": None},
}


# ------------------------------------------------------------------ the transforms


def test_the_latest_version_renders_unchanged() -> None:
    assert versions.render(BASRA_ERROR, versions.LATEST, "response") == BASRA_ERROR
    assert versions.render(BASRA_EVENT, versions.LATEST, "event") == BASRA_EVENT


def test_tigris_errors_are_plain_strings_as_seed_002_shows() -> None:
    before = copy.deepcopy(BASRA_ERROR)
    assert versions.render(BASRA_ERROR, versions.TIGRIS, "response") == {
        "success": False, "error": "payment declined: insufficient funds (code: 51)"}
    assert before == BASRA_ERROR  # the input is never modified
    ok = {"success": True, "data": {"id": "pay_1", "status": "captured"}}
    assert versions.render(ok, versions.TIGRIS, "response") == ok


def test_tigris_events_use_the_seed_002_envelope() -> None:
    rendered = versions.render(BASRA_EVENT, versions.TIGRIS, "event")
    assert rendered == {
        "event": "payment.authorized", "timestamp": "2026-01-24T10:00:00Z", "id": "evt_abc123def456",
        "data": {"payment_id": "pay_xyz789uvw012", "status": "authorized", "amount": 9999, "currency": "USD",
                 "card_brand": "visa", "card_last4": "4242", "created_at": "2026-01-24T10:00:00Z"},
    }
    assert "sequence" not in rendered
    with_merchant = {**BASRA_EVENT, "merchant_id": "merchant_abc123"}
    assert versions.render(with_merchant, versions.TIGRIS, "event")["data"]["merchant_id"] == "merchant_abc123"
    # Response changes do not touch events, and the other way round.
    assert versions.render(BASRA_EVENT, versions.TIGRIS, "response") == BASRA_EVENT


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(versions.UnknownVersion):
        versions.render(BASRA_ERROR, "2024-01-01.nowhere", "response")


# ------------------------------------------------------------------ over HTTP


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]




def declined(key: str, **kwargs: Any) -> Any:
    return authorize(key, body={**PAYMENT, "card": {**CARD, "number": "4000000000009995"}}, **kwargs)


def test_new_merchants_get_the_latest_version_and_the_list_says_so(sk: str) -> None:
    answer = call("api-versions-list", sk)
    assert answer.status == 200
    data = answer.data
    assert data["latest"] == data["pinned"] == "2026-06-14.basra" and data["upgrade_available"] is False
    assert [(v["version"], v["status"]) for v in data["versions"]] == [
        ("2026-06-14.basra", "latest"), ("2025-12-01.tigris", "supported")]
    assert {c["name"] for c in data["versions"][0]["changes"]} == {
        "structured_errors", "event_envelope", "intent_statuses", "intent_statuses_in_events",
        "confirm_paid_intent_conflict"}
    assert answer.headers["tahsil-version"] == "2026-06-14.basra"


def test_the_tahsil_version_header_renders_one_request_for_that_version(sk: str) -> None:
    old = declined(sk, headers={"Tahsil-Version": "2025-12-01.tigris"})
    assert old.status == 402 and isinstance(old.body["error"], str) and "declined" in old.body["error"]
    assert old.headers["tahsil-version"] == "2025-12-01.tigris"
    latest = declined(sk)
    assert latest.error["code"] == "PAYMENT_DECLINED"
    ok = authorize(sk, headers={"Tahsil-Version": "2025-12-01.tigris"})
    assert ok.status == 200 and ok.data["status"] == "authorized"


def test_an_unknown_tahsil_version_is_a_400_naming_the_header(sk: str) -> None:
    answer = authorize(sk, headers={"Tahsil-Version": "2020-01-01.ur"})
    assert answer.status == 400 and answer.error["param"] == "Tahsil-Version"
    assert "2026-06-14.basra" in answer.error["message"]


def test_a_pinned_merchant_gets_its_version_everywhere_until_it_upgrades(merchant: dict[str, Any], sk: str) -> None:
    pin(merchant["merchant_id"], versions.TIGRIS)
    assert isinstance(declined(sk).body["error"], str)
    invalid = call("payments-authorize", sk, body={**PAYMENT, "amount": 0})  # refused by validation, before the route
    assert invalid.status == 400 and isinstance(invalid.body["error"], str) and "amount" in invalid.body["error"]
    listed = call("api-versions-list", sk).data
    assert listed["pinned"] == versions.TIGRIS and listed["upgrade_available"] is True

    upgraded = call("account-api-version", sk, body={"api_version": versions.LATEST})
    assert upgraded.status == 200
    assert upgraded.data == {"object": "account", "api_version": versions.LATEST, "previous_version": versions.TIGRIS,
                             "keys_updated": 4}
    assert declined(sk).error["code"] == "PAYMENT_DECLINED"
    # Keys created afterwards carry the new pin too.
    made = call("api-keys-create", sk, body={"name": "k", "scopes": ["payments:create"]})
    assert made.data["api_version"] == versions.LATEST


def test_the_pin_moves_forward_only_and_names_bad_versions(sk: str) -> None:
    down = call("account-api-version", sk, body={"api_version": versions.TIGRIS})
    assert down.status == 400 and down.error["param"] == "api_version"
    unknown = call("account-api-version", sk, body={"api_version": "2030-01-01.ur"})
    assert unknown.status == 400 and unknown.error["param"] == "api_version"
