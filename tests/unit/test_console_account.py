"""The account profile and payout destination: GET/PATCH /v1/account, bank details checked like banks do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tahsil.console import banking
from tahsil.kernel.errors import InvalidRequest
from tests.support.account import IQD, PROFILE
from tests.support.calls import create_key
from tests.support.console import call


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


@pytest.fixture
def lk(merchant: dict[str, Any]) -> str:
    """Payout details are changed with a live key (tests/unit/test_payout_changes.py covers who else may)."""
    return merchant["keys"]["live"]["secret"]


# ------------------------------------------------------------------ bank details, as banks check them


@pytest.mark.parametrize(("currency", "iban", "country"), [
    ("EUR", "DE89 3704 0044 0532 0130 00", "DE"),
    ("EUR", "FR14 2004 1010 0505 0001 3M02 606", "FR"),
    ("TRY", "TR33 0006 1005 1978 6457 8413 26", "TR"),
    ("MAD", "MA64 0115 1900 0001 2050 0053 4921", "MA"),
    ("IQD", "IQ98 NBIQ 8501 2345 6789 012", "IQ"),
])
def test_valid_ibans_pass_and_only_the_last_4_are_kept_in_clear(currency: str, iban: str, country: str) -> None:
    account = banking.check(currency, iban=iban, routing_number=None, account_number=None)
    assert account.country == country and account.account == iban.replace(" ", "") and account.last4 == iban.replace(" ", "")[-4:]


@pytest.mark.parametrize(("currency", "iban", "reason"), [
    ("EUR", "DE89 3704 0044 0532 0130 01", "check digits"),   # one digit off: mod 97 catches it
    ("IQD", "IQ99 NBIQ 8501 2345 6789 012", "check digits"),
    ("TRY", "TR33 0006 1005 1978 6457 8413 2", "26 characters"),
    ("MAD", "DE89 3704 0044 0532 0130 00", "MA"),             # a German IBAN cannot receive dirhams
    ("EUR", "TR33 0006 1005 1978 6457 8413 26", "euro-area"),
    ("IQD", "IQ98 1234 8501 2345 6789 012", "BBAN"),            # Iraqi bank codes are letters
    ("EUR", "not an iban", "2 letters"),
])
def test_bad_ibans_are_refused_naming_the_field(currency: str, iban: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        banking.check(currency, iban=iban, routing_number=None, account_number=None)
    assert caught.value.param == "payout_destination.iban" and reason in caught.value.message


def test_usd_takes_an_aba_routing_number_with_its_checksum() -> None:
    account = banking.check("USD", iban=None, routing_number="021000021", account_number="000123456789")
    assert account.scheme == "aba" and account.last4 == "6789"
    for routing, param in (("021000022", "routing_number"), ("12345678", "routing_number"), ("991000021", "routing_number")):
        with pytest.raises(InvalidRequest) as caught:
            banking.check("USD", iban=None, routing_number=routing, account_number="000123456789")
        assert caught.value.param == f"payout_destination.{param}"
    with pytest.raises(InvalidRequest) as caught:
        banking.check("USD", iban=None, routing_number="021000021", account_number="12")
    assert caught.value.param == "payout_destination.account_number"
    with pytest.raises(InvalidRequest) as caught:
        banking.check("USD", iban="DE89370400440532013000", routing_number=None, account_number=None)
    assert caught.value.param == "payout_destination.iban"


# ------------------------------------------------------------------ the API


def test_a_new_account_has_an_empty_profile(sk: str, merchant: dict[str, Any]) -> None:
    answer = call("account-get", sk)
    assert answer.status == 200
    assert answer.data["id"] == merchant["merchant_id"] and answer.data["name"] == "Test Store"
    assert answer.data["legal_name"] is None and answer.data["payout_destination"] is None


def test_patch_changes_what_was_sent_and_null_clears_a_field(sk: str) -> None:
    first = call("account-update", sk, body=PROFILE)
    assert first.status == 200 and {k: first.data[k] for k in PROFILE} == PROFILE
    assert first.data["profile_id"].startswith("prf_")
    second = call("account-update", sk, body={"support_url": None, "mcc": "5411"})
    assert second.data["support_url"] is None and second.data["mcc"] == "5411"
    assert second.data["legal_name"] == PROFILE["legal_name"] and second.data["profile_id"] != first.data["profile_id"]
    assert call("account-get", sk).data == second.data


def test_the_payout_destination_is_stored_sealed_and_shown_masked(lk: str, merchant: dict[str, Any]) -> None:
    from tahsil.store import crypto, dal

    answer = call("account-update", lk, body={"payout_destination": IQD})
    payout = answer.data["payout_destination"]
    assert answer.status == 200
    assert payout["status"] == "unverified" and payout["country"] == "IQ" and payout["last4"] == "9012"
    assert payout["bank_code"] == "NBIQ" and payout["id"].startswith("po_")
    item = dal.get(dal.credentials_table(), f"MER#{merchant['merchant_id']}", "MER")
    assert "IQ98NBIQ850123456789012" not in json.dumps(item) and "8501 2345" not in json.dumps(item)
    sealed = item["payout_destination"]["sealed"]
    context = f"payout/{merchant['merchant_id']}/{payout['id']}"
    assert crypto.secrets_vault.decrypt(sealed, context=context) == "IQ98NBIQ850123456789012"
    assert "iban" not in json.dumps(answer.body).lower().replace("scheme\": \"iban", "")


@pytest.mark.parametrize(("body", "param"), [
    ({"payout_destination": {**IQD, "iban": "IQ99 NBIQ 8501 2345 6789 012"}}, "payout_destination.iban"),
    ({"payout_destination": {"currency": "USD", "account_holder_name": "Shop", "routing_number": "021000022",
                             "account_number": "123456789"}}, "payout_destination.routing_number"),
    ({"payout_destination": {"currency": "XAU", "account_holder_name": "Shop", "iban": "DE89370400440532013000"}},
     "payout_destination.currency"),
    ({"payout_destination": {"currency": "EUR", "iban": "DE89370400440532013000"}}, "payout_destination.account_holder_name"),
    ({"mcc": "12"}, "mcc"),
    ({"support_phone": "0770 123 4567"}, "support_phone"),
    ({"support_email": "not-an-email"}, "support_email"),
    ({"support_url": "http://insecure.example"}, "support_url"),
    ({"legal_name": "Shop", "colour": "red"}, "colour"),
])
def test_bad_input_is_a_400_naming_the_field_and_nothing_changes(lk: str, sk: str, body: dict[str, Any], param: str) -> None:
    answer = call("account-update", lk, body=body)
    assert answer.status == 400 and answer.error["param"] == param, answer.body
    assert call("account-get", sk).data["legal_name"] is None


def test_reading_needs_account_read_and_changing_needs_account_write(sk: str) -> None:
    reader = create_key(sk, scopes=["account:read"]).data["secret"]
    assert call("account-get", reader).status == 200
    refused = call("account-update", reader, body={"mcc": "5411"})
    assert refused.status == 403 and refused.error["code"] == "MISSING_SCOPE"
