"""Seed 002's payment intents under ``Tahsil-Version: 2025-12-01.tigris``: statuses, public error objects,
and the 400 for confirming a paid intent; the latest version unchanged."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tahsil.kernel import versions
from tests.support.intents import DECLINED, cancel, create, get, get_public, list_intents
from tests.support.lambdas import invoke, load_event

TIGRIS = {"Tahsil-Version": versions.TIGRIS}
CARD = {"number": "4242424242424242", "cardholder_name": "John Doe", "exp_month": 12, "exp_year": 2030, "cvv": "123"}


def confirm(intent: dict[str, Any], number: str = "4242424242424242", headers: dict[str, str] | None = None) -> Any:
    event = load_event("public-payment-intents-confirm", path_id=intent["id"], headers=headers,
                       body={"card": {**CARD, "number": number}, "customer_email": "john@example.com"})
    event["headers"]["X-Client-Secret"] = intent["client_secret"]
    return invoke("ConfirmPaymentIntentFunction", event)


def get_public_as(intent_id: str, headers: dict[str, str]) -> Any:
    return invoke("GetPublicPaymentIntentFunction", load_event("public-payment-intents-get", path_id=intent_id,
                                                               headers=headers))


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


@pytest.fixture
def intent(sk: str) -> dict[str, Any]:
    answer = create(sk)
    assert answer.status == 201, answer.body
    return answer.data


# ------------------------------------------------------------------ the transforms


LOCKED = {"success": True, "data": {"id": "pi_1", "object": "payment_intent", "status": "locked", "amount": 1}}


def test_tigris_names_a_locked_intent_failed_and_a_paid_one_authorized_in_answers_and_lists() -> None:
    before = copy.deepcopy(LOCKED)
    assert versions.render(LOCKED, versions.TIGRIS, "response")["data"]["status"] == "failed"
    assert before == LOCKED
    paid = {"success": True, "data": {**LOCKED["data"], "status": "succeeded", "payment_status": "captured"}}
    rendered = versions.render(paid, versions.TIGRIS, "response")["data"]
    assert rendered["status"] == "authorized" and rendered["payment_status"] == "captured"
    listed = {"success": True, "data": {"object": "list", "payment_intents": [LOCKED["data"], paid["data"]]}}
    assert [i["status"] for i in versions.render(listed, versions.TIGRIS, "response")["data"]["payment_intents"]] == [
        "failed", "authorized"]
    # A payment's statuses are seed 002's already; the latest version is untouched.
    payment = {"success": True, "data": {"id": "pay_1", "object": "payment", "status": "captured"}}
    assert versions.render(payment, versions.TIGRIS, "response") == payment
    assert versions.render(LOCKED, versions.LATEST, "response") == LOCKED


def test_tigris_intent_events_carry_the_seed_statuses() -> None:
    event = {"id": "evt_1", "object": "event", "type": "payment_intent.payment_failed", "created": "2026-01-24T10:00:00Z",
             "data": {"object": {"id": "pi_1", "object": "payment_intent", "status": "locked"},
                      "previous_attributes": {"status": "created", "attempts": 4}}}
    rendered = versions.render(event, versions.TIGRIS, "event")
    assert rendered["event"] == "payment_intent.payment_failed"
    assert rendered["data"]["payment_intent_id"] == "pi_1" and rendered["data"]["status"] == "failed"


def test_public_errors_stay_objects_with_seed_002_fields_and_a_paid_confirm_is_400() -> None:
    declined = {"success": False, "error": {"code": "PAYMENT_DECLINED", "message": "card declined: insufficient funds",
                                            "param": None, "request_id": "r-1", "decline_code": "51",
                                            "remaining_attempts": 3}}
    handler = versions.public_handler(lambda event, context: {
        "statusCode": 402, "headers": {"Tahsil-Version": versions.TIGRIS},
        "body": json.dumps(versions.render(declined, versions.TIGRIS, "response"))})
    answer = handler({}, None)
    assert answer["statusCode"] == 402
    assert json.loads(answer["body"]) == {"success": False, "error": {
        "code": "PAYMENT_DECLINED", "message": "card declined: insufficient funds", "remaining_attempts": 3}}
    # Outside a public handler the same error is seed 002's merchant-API string.
    assert versions.render(declined, versions.TIGRIS, "response")["error"] == "card declined: insufficient funds"


# ------------------------------------------------------------------ over the handlers


def test_under_tigris_five_declines_read_failed_everywhere(sk: str, intent: dict[str, Any]) -> None:
    answers = [confirm(intent, DECLINED, TIGRIS) for _ in range(5)]
    assert [a.status for a in answers] == [402] * 5
    assert answers[0].error == {"code": "PAYMENT_DECLINED", "message": "card declined: do not honor",
                                "remaining_attempts": 4}
    assert answers[-1].error["remaining_attempts"] == 0
    assert get_public_as(intent["id"], TIGRIS).data["status"] == "failed"
    merchant_view = invoke("GetPaymentIntentFunction", load_event("payment-intents-get", key=sk, path_id=intent["id"],
                                                                  headers=TIGRIS))
    assert merchant_view.data["status"] == "failed"
    again = confirm(intent, headers=TIGRIS)
    assert again.status == 410 and again.error == {"code": "MAX_ATTEMPTS_REACHED",
                                                   "message": "maximum payment attempts reached (5)"}
    # The latest version still says locked.
    assert get(sk, intent["id"]).data["status"] == "locked" and get_public(intent["id"]).data["status"] == "locked"
    assert list_intents(sk).data["payment_intents"][0]["status"] == "locked"


def test_under_tigris_confirm_answers_authorized_and_a_second_confirm_is_400(sk: str, intent: dict[str, Any]) -> None:
    paid = confirm(intent, headers=TIGRIS)
    assert paid.status == 200 and paid.headers["tahsil-version"] == versions.TIGRIS
    assert paid.data["status"] == "authorized" and paid.data["payment_id"].startswith("pay_")
    assert paid.data["redirect_url"].endswith(f"payment_intent={intent['id']}")
    assert get_public_as(intent["id"], TIGRIS).data["status"] == "authorized"

    second = confirm(intent, "5555555555554444", TIGRIS)
    assert second.status == 400
    assert second.error == {"code": "INTENT_COMPLETED", "message": "payment intent already completed"}
    latest = confirm(intent, "5555555555554444")
    assert latest.status == 409 and latest.error["code"] == "INVALID_STATE" and latest.error["status"] == "succeeded"
    assert get(sk, intent["id"]).data["status"] == "succeeded"


def test_under_tigris_public_errors_are_objects_and_merchant_errors_strings(sk: str, intent: dict[str, Any]) -> None:
    bad = confirm({**intent, "client_secret": "pi_wrong_secret"}, headers=TIGRIS)
    assert bad.status == 401 and bad.error == {"code": "INVALID_CLIENT_SECRET", "message": "client secret is invalid"}
    invalid = confirm(intent, "4242424242424241", TIGRIS)
    assert invalid.status == 400 and set(invalid.error) == {"code", "message"}
    assert invalid.error["code"] == "INVALID_REQUEST" and invalid.error["message"].startswith("card.number")
    missing = get_public_as("pi_" + "y" * 20, TIGRIS)
    assert missing.status == 404 and missing.error == {"code": "NOT_FOUND", "message": "payment intent not found"}
    # The merchant API keeps seed 002's strings.
    confirm(intent)
    canceled = invoke("CancelPaymentIntentFunction", load_event("payment-intents-cancel", key=sk, path_id=intent["id"],
                                                                headers=TIGRIS))
    assert canceled.status == 400 and canceled.body["error"] == "cannot cancel completed payment intent"
    assert cancel(sk, intent["id"]).error["code"] == "INTENT_COMPLETED"


def test_an_intent_of_a_tigris_pinned_merchant_renders_tigris_on_its_public_endpoints(merchant: dict[str, Any]) -> None:
    from tests.support.versions import pin

    pin(merchant["merchant_id"], versions.TIGRIS)
    made = create(merchant["keys"]["test"]["secret"]).data
    assert confirm(made).data["status"] == "authorized"
    # The checkout page asks for the version it was written for, whatever the pin.
    latest = confirm(made, headers={"Tahsil-Version": versions.LATEST})
    assert latest.status == 409 and latest.error["status"] == "succeeded"
