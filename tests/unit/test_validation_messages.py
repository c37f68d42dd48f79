"""A bad field is answered in words a merchant understands: the field and the expected form, never a regular
expression or an internal type name."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import console as console_support
from tests.support.calls import CARD, PAYMENT, call
from tests.support.intents import create, intent_body

LEAKS = re.compile(r"pattern|\^|\$'|\[\^|instance of|after validation|String should match")


def _ok(message: str) -> None:
    assert not LEAKS.search(message), message


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


@pytest.mark.parametrize("change, param, words", [
    ({"customer": {"email": "john.doe@"}}, "customer.email", "customer.email: must be an e-mail address such as name@example.com"),
    ({"currency": "US"}, "currency", "currency: must be a three-letter ISO 4217 currency code such as USD"),
    ({"customer": "John"}, "customer", "customer: must be a JSON object"),
    ({"card": "4242"}, "card", "card: must be a JSON object"),
    ({"amount": 99.5}, "amount", "amount: must be an integer"),
])
def test_payment_fields_are_refused_in_words(sk: str, change: dict[str, Any], param: str, words: str) -> None:
    answer = call("payments-authorize", sk, body={**PAYMENT, "card": CARD, **change})
    assert answer.status == 400 and answer.error["param"] == param
    assert answer.error["message"] == words
    _ok(answer.error["message"])


def test_a_lower_case_currency_and_a_padded_email_still_pass(sk: str) -> None:
    answer = call("payments-authorize", sk, body={**PAYMENT, "currency": "usd", "customer": {"email": " a@b.co "}})
    assert answer.status == 200, answer.body


def test_an_intents_customer_email_is_refused_in_words(sk: str) -> None:
    answer = create(sk, intent_body(customer_email="not an email"))
    assert answer.status == 400 and answer.error["param"] == "customer_email"
    assert answer.error["message"] == "customer_email: must be an e-mail address such as name@example.com"


@pytest.mark.parametrize("change, param, expected", [
    ({"support_email": "help@shop"}, "support_email", "e-mail address such as name@example.com"),
    ({"support_phone": "07701234567"}, "support_phone", "E.164"),
    ({"support_url": "http://shop.example/help"}, "support_url", "https:// URL"),
    ({"mcc": "12"}, "mcc", "4-digit ISO 18245 merchant category code"),
    ({"payout_destination": {"currency": "E1", "account_holder_name": "Shop Ltd"}}, "payout_destination.currency",
     "three-letter ISO 4217 currency code"),
])
def test_account_fields_are_refused_in_words(merchant: dict[str, Any], change: dict[str, Any], param: str,
                                             expected: str) -> None:
    answer = console_support.call("account-update", merchant["keys"]["test"]["secret"], body=change)
    assert answer.status == 400 and answer.error["param"] == param
    assert expected in answer.error["message"] and answer.error["message"].startswith(f"{param}: ")
    _ok(answer.error["message"])


def test_every_request_models_pattern_is_worded() -> None:
    """A pattern constraint without ``worded`` beside it would fall back to the generic wording: catch it here."""
    from pydantic import BaseModel, ValidationError

    from tahsil.console import models as console
    from tahsil.identity import models as identity
    from tahsil.payments import models as payments
    from tahsil.webhooks import models as webhooks

    for module in (payments, console, identity, webhooks):
        for model in vars(module).values():
            if not (isinstance(model, type) and issubclass(model, BaseModel) and model.model_config.get("extra") == "forbid"):
                continue
            model.model_rebuild()
            for name, props in model.model_json_schema().get("properties", {}).items():
                for option in [props, *props.get("anyOf", [])]:
                    if "pattern" in option:
                        with pytest.raises(ValidationError) as refused:
                            model.model_validate({name: "\u00a7 not it \u00a7"})
                        mine = [e for e in refused.value.errors() if e["loc"][:1] == (name,)]
                        assert mine and mine[0]["type"] == "value_error", (model.__name__, name, mine)
