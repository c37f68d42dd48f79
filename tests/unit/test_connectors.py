"""Live payments through a processor connector: the fake Adyen, HMAC notifications, crash-safe phases."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tahsil_local.fake_adyen import FakeAdyen
from tests.support.connectors import (
    HMAC_KEY,
    LIVE_CARD,
    act,
    all_items,
    connect,
    deliver,
    dumps,
    events_of,
    get,
    notify,
    pay,
    run_recovery,
)

SEED_TEST_CARDS = ["4242424242424242", "5555555555554444", "4000000000000002", "4000000000009995", "4000000000000069",
                   "4000000000000127", "4000000000000119", "4000000000000259"]


@pytest.fixture
def live(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["live"]["secret"]


@pytest.mark.parametrize("number", SEED_TEST_CARDS)
def test_every_seed_test_card_is_declined_in_live_mode_without_calling_a_processor(
        merchant: dict[str, Any], live: str, fake_adyen: FakeAdyen, number: str) -> None:
    connect(merchant["merchant_id"], fake_adyen)
    answer = pay(live, card={"number": number})
    assert answer.status == 402
    assert answer.error["code"] == "TEST_CARD_IN_LIVE_MODE"
    assert number[-4:] in answer.error["message"] and "test card" in answer.error["message"]
    assert fake_adyen.requests == 0
    assert not [i for i in all_items() if i["pk"].startswith("PAY#")]


def test_a_live_payment_without_a_connector_is_refused_and_nothing_is_stored(live: str) -> None:
    answer = pay(live)
    assert answer.status == 403 and answer.error["code"] == "LIVE_CONNECTOR_NOT_CONFIGURED"
    assert not [i for i in all_items() if i["pk"].startswith(("PAY#", "EVTS#", "EVT#"))]


def test_test_mode_never_uses_the_live_connector(merchant: dict[str, Any], fake_adyen: FakeAdyen) -> None:
    connect(merchant["merchant_id"], fake_adyen)
    answer = pay(merchant["keys"]["test"]["secret"], card={"number": "4242424242424242"})
    assert answer.status == 200 and answer.data["status"] == "authorized" and "processor_reference" not in answer.data
    assert fake_adyen.requests == 0


def test_authorize_capture_refund_through_adyen_settle_by_notification(merchant: dict[str, Any], live: str,
                                                                        fake_adyen: FakeAdyen) -> None:
    mid = merchant["merchant_id"]
    connect(mid, fake_adyen)
    auth = pay(live, amount=5000)
    assert auth.status == 200, auth.body
    payment = auth.data
    assert payment["status"] == "authorized" and payment["livemode"] is True and payment["response_code"] == "00"
    psp = payment["processor_reference"]
    assert psp in fake_adyen.payments and fake_adyen.payments[psp].reference == payment["id"]

    captured = act("capture", live, payment["id"], {"amount": 4000})
    assert captured.status == 200 and captured.data["status"] == "capture_pending"
    assert captured.data["pending_action"]["type"] == "capture" and captured.data["pending_action"]["amount"] == 4000
    assert act("void", live, payment["id"], {"reason": "x"}).error["code"] == "MODIFICATION_PENDING"
    assert "payment.captured" not in events_of(payment["id"])
    deliver(mid, fake_adyen)
    after = get(live, payment["id"]).data
    assert after["status"] == "captured" and after["captured_amount"] == 4000 and after["pending_action"] is None

    for amount, status in ((1500, "partially_refunded"), (2500, "refunded")):
        refund = act("refund", live, payment["id"], {"amount": amount, "reason": "returned"})
        assert refund.status == 200 and refund.data["status"] == "refund_pending"
        deliver(mid, fake_adyen)
        assert get(live, payment["id"]).data["status"] == status
    assert fake_adyen.payments[psp].captured == 4000 and fake_adyen.payments[psp].refunded == 4000
    assert events_of(payment["id"]) == ["payment.authorized", "payment.captured", "payment.refunded", "payment.refunded"]
    card_dump = dumps(all_items())
    assert LIVE_CARD["number"] not in card_dump and "AQE1test" not in card_dump  # no PAN, no API key in DynamoDB


def test_void_is_pending_then_voided_and_sale_is_captured_at_once(merchant: dict[str, Any], live: str,
                                                                  fake_adyen: FakeAdyen) -> None:
    mid = merchant["merchant_id"]
    connect(mid, fake_adyen)
    payment = pay(live).data
    assert act("void", live, payment["id"], {"reason": "customer changed mind"}).data["status"] == "void_pending"
    deliver(mid, fake_adyen)
    assert get(live, payment["id"]).data["status"] == "voided"
    sale = pay(live, sale=True)
    assert sale.data["status"] == "captured" and sale.data["captured_amount"] == 1000


@pytest.mark.parametrize(("holder", "code"), [("Not enough balance", "51"), ("CVC Declined", "N7"), ("Expired Card", "54"),
                                              ("Issuer Unavailable", "96"), ("FRAUD", "59"), ("Blocked Card", "05")])
def test_adyen_refusals_map_to_seed_codes_and_keep_adyens_reason(merchant: dict[str, Any], live: str,
                                                                 fake_adyen: FakeAdyen, holder: str, code: str) -> None:
    connect(merchant["merchant_id"], fake_adyen)
    answer = pay(live, card={"cardholder_name": holder})
    assert answer.status == 402 and answer.error["decline_code"] == code
    stored = next(i for i in all_items() if i["pk"] == f"PAY#{answer.error['payment_id']}")
    assert stored["status"] == "failed" and stored["processor_reason"] == f"Refused: {holder}"


def test_a_timeout_answers_202_processing_and_the_same_key_gets_the_outcome_without_a_second_charge(
        merchant: dict[str, Any], live: str, fake_adyen: FakeAdyen) -> None:
    connect(merchant["merchant_id"], fake_adyen)
    faults = iter(["hang_after"])
    fake_adyen.fault = lambda op: next(faults, None)
    first = pay(live, idem="order-1")
    assert first.status == 202 and first.data["status"] == "processing"
    again = pay(live, idem="order-1")
    assert again.status == 200 and again.data["status"] == "authorized" and again.data["id"] == first.data["id"]
    assert len(fake_adyen.payments) == 1
    assert pay(live, idem="order-1").headers.get("idempotent-replayed") == "true"
    assert events_of(first.data["id"]) == ["payment.authorized"]
    # One attempt on the card for the fraud rules, however often the request came.
    assert [i["n"] for i in all_items() if i["pk"].startswith("VEL#")] == [1]


def test_a_crash_after_the_processor_approved_is_completed_by_its_notification_never_by_a_second_charge(
        merchant: dict[str, Any], live: str, fake_adyen: FakeAdyen, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.payments import lifecycle

    connect(merchant["merchant_id"], fake_adyen)

    def crash(stage: str, reference: str) -> None:
        if stage == "commit":
            raise RuntimeError("the Lambda died here")

    monkeypatch.setattr(lifecycle, "checkpoint", crash)
    answer = pay(live)
    assert answer.status == 500
    monkeypatch.setattr(lifecycle, "checkpoint", lambda stage, reference: None)
    [payment] = [i for i in all_items() if i["pk"].startswith("PAY#")]
    assert payment["status"] == "processing"
    # The worker never sends the authorization again (no CVC, no shopper): it waits for Adyen's word.
    run_recovery(rounds=1)
    assert get(live, payment["id"]).data["status"] == "processing" and len(fake_adyen.payments) == 1
    deliver(merchant["merchant_id"], fake_adyen)
    assert get(live, payment["id"]).data["status"] == "authorized"
    assert len(fake_adyen.payments) == 1 and events_of(payment["id"]) == ["payment.authorized"]


def test_an_authorization_adyen_never_received_fails_at_the_deadline_and_is_never_sent_by_recovery(
        merchant: dict[str, Any], live: str, fake_adyen: FakeAdyen, monkeypatch: pytest.MonkeyPatch) -> None:
    connect(merchant["merchant_id"], fake_adyen)
    faults = iter(["hang_before"])
    fake_adyen.fault = lambda op: next(faults, None)
    first = pay(live)
    assert first.status == 202 and first.data["status"] == "processing"
    run_recovery(rounds=1)
    assert fake_adyen.payments == {}  # recovery starts no charge
    assert get(live, first.data["id"]).data["status"] == "processing"
    monkeypatch.setenv("RECOVERY_DEADLINE_SECONDS", "0")
    time.sleep(1.2)  # the worker queued itself again, 1 s later (backoff from RECOVERY_DELAY_SECONDS=0)
    run_recovery(rounds=1)
    after = get(live, first.data["id"]).data
    assert after["status"] == "failed" and after["decline_code"] == "processor_unreachable"
    assert fake_adyen.payments == {} and events_of(first.data["id"]) == ["payment.failed"]


def test_notifications_need_a_valid_hmac_and_duplicates_change_nothing(merchant: dict[str, Any], live: str,
                                                                        fake_adyen: FakeAdyen) -> None:
    mid = merchant["merchant_id"]
    connect(mid, fake_adyen)
    payment = pay(live).data
    fake_adyen.take_notifications()
    act("capture", live, payment["id"])
    [item] = fake_adyen.take_notifications()
    forged = {**item, "amount": {"value": 1, "currency": "EUR"}}
    assert notify(mid, FakeAdyen.envelope([forged]))[0] == 401
    assert notify("mer_unknown000000000000", FakeAdyen.envelope([item]))[0] == 401
    assert get(live, payment["id"]).data["status"] == "capture_pending"
    for _ in range(3):
        assert notify(mid, FakeAdyen.envelope([item])) == (200, "[accepted]")
    assert events_of(payment["id"]) == ["payment.authorized", "payment.captured"]


def test_operator_sets_the_connector_with_credentials_only_in_secrets_manager(merchant: dict[str, Any],
                                                                               fake_adyen: FakeAdyen) -> None:
    from tahsil.connectors import settings
    from tahsil.kernel.errors import InvalidRequest
    from tahsil.store import aws, dal

    view = connect(merchant["merchant_id"], fake_adyen)
    assert view["connector"] == "adyen" and "api_key" not in view and "hmac_key" not in view
    row = settings.load(merchant["merchant_id"], "live")
    assert HMAC_KEY not in json.dumps(row) and "AQE1test" not in json.dumps(row)
    secret = aws.client("secretsmanager").describe_secret(SecretId=row["secret_id"])
    assert secret.get("KmsKeyId")
    creds_dump = json.dumps([dal.load(i) for i in aws.client("dynamodb").scan(TableName=dal.credentials_table())["Items"]],
                            default=str)
    assert "AQE1test" not in creds_dump
    for bad in ({"mode": "test"}, {"connector": "simulator"}, {"hmac_key": "zz"}, {"base_url": "https://evil.example"}):
        args = {"mode": "live", "connector": "adyen", "operator": "t", "merchant_account": "Acc", "api_key": "k" * 20,
                "hmac_key": HMAC_KEY, "base_url": fake_adyen.url} | bad
        with pytest.raises(InvalidRequest):
            settings.configure(merchant["merchant_id"], **args)


# ------------------------------------------------------------------ pure mapping (no AWS)

SEED_TABLE = {"4242424242424242": ("approved", "00"), "5555555555554444": ("approved", "00"),
              "4000000000000002": ("declined", "05"), "4000000000009995": ("declined", "51"),
              "4000000000000069": ("declined", "54"), "4000000000000127": ("declined", "N7"),
              "4000000000000119": ("declined", "96"), "4000000000000259": ("approved", "00")}


@pytest.mark.parametrize(("number", "expected"), sorted(SEED_TABLE.items()))
def test_the_simulator_connector_answers_as_seed_002s_test_card_table(number: str, expected: tuple[str, str]) -> None:
    from tahsil.connectors.base import CardData, Operation
    from tahsil.payments.payments import SIMULATOR

    outcome = SIMULATOR.authorize(Operation("authorize", "pay_x", 100, "USD", "pay_x", card=CardData(number, 12, 2030)),
                                  timeout=0)
    assert (outcome.status, outcome.code) == expected
    assert outcome.risk_flag is (number == "4000000000000259")  # declined by the fraud rules, not the issuer
    assert SIMULATOR.remote is False


@pytest.mark.parametrize(("answer", "status", "code"), [
    ({"resultCode": "Error", "refusalReason": "Acquirer Error"}, "declined", "96"),
    ({"resultCode": "RedirectShopper"}, "declined", "05"),
    ({"resultCode": "Received"}, "pending", "00"),
    ({"resultCode": "Refused", "refusalReason": "Withdrawal amount exceeded", "refusalReasonCode": "28"}, "declined", "51"),
    ({"resultCode": "Refused", "refusalReason": "Something new"}, "declined", "05"),
])
def test_adyen_result_codes_map_onto_seed_codes(answer: dict[str, Any], status: str, code: str) -> None:
    from tahsil.connectors.adyen import payment_outcome

    outcome = payment_outcome({"pspReference": "P1", **answer})
    assert (outcome.status, outcome.code, outcome.processor_reference) == (status, code, "P1")


def test_a_notification_without_or_with_a_wrong_signature_is_rejected() -> None:
    from tahsil.connectors.adyen import InvalidNotification, parse_notifications

    fake = FakeAdyen(api_key="k", hmac_key=HMAC_KEY, merchant_account="A")
    fake._notify("CAPTURE_FAILED", "P2", "P1", "txn_abc12345", 500, "EUR", False, "Insufficient balance")
    [item] = fake.take_notifications()
    [note] = parse_notifications(FakeAdyen.envelope([item]), HMAC_KEY)
    assert note.identity == "CAPTURE_FAILED:P2:false" and note.outcome().status == "declined"
    unsigned = {k: v for k, v in item.items() if k != "additionalData"}
    for bad in (unsigned, {**item, "success": "true"}):
        with pytest.raises(InvalidNotification):
            parse_notifications(FakeAdyen.envelope([bad]), HMAC_KEY)
    with pytest.raises(InvalidNotification):
        parse_notifications(FakeAdyen.envelope([item]), "00" * 32)


def test_a_keyed_capture_retried_finds_its_transaction_by_its_marker_or_by_the_older_layouts_row(
        merchant: dict[str, Any], live: str, fake_adyen: FakeAdyen) -> None:
    from tahsil.kernel.config import settings
    from tahsil.kernel.events import RequestContext
    from tahsil.kernel.principal import Principal
    from tahsil.payments import lifecycle
    from tahsil.store import dal

    def forget_answers() -> None:  # as when the first answer was lost (a 202 keeps no idempotency record)
        client = dal._ddb()
        for record in client.scan(TableName=settings().idempotency_table)["Items"]:
            client.delete_item(TableName=settings().idempotency_table, Key={"id": record["id"]})

    mid = merchant["merchant_id"]
    connect(mid, fake_adyen)
    first = pay(live, amount=5000).data
    captured = act("capture", live, first["id"], {"amount": 4000}, idem="cap-1")
    assert captured.status == 200 and captured.data["status"] == "capture_pending"
    txn_id = captured.data["pending_action"]["transaction_id"]
    [marker] = [i for i in all_items() if i["pk"].startswith("TXR#")]
    assert (marker["transaction_id"], marker["payment_id"], marker["merchant_id"]) == (txn_id, first["id"], mid)
    forget_answers()
    pending = act("capture", live, first["id"], {"amount": 4000}, idem="cap-1")  # still pending: the same one
    assert pending.status == 200 and pending.data["pending_action"]["transaction_id"] == txn_id
    deliver(mid, fake_adyen)
    forget_answers()
    settled = act("capture", live, first["id"], {"amount": 4000}, idem="cap-1")  # settled since: the payment
    assert settled.status == 200 and settled.data["status"] == "captured" and settled.data["transaction_id"] == txn_id
    ledger = fake_adyen.payments[first["processor_reference"]]
    assert ledger.captured == 4000 and [op[0] for op in ledger.operations].count("capture") == 1  # captured once

    # A request first made before markers wrote its transaction under the id derived from its key.
    second = pay(live, amount=3000).data
    who = Principal(merchant_id=mid, mode="live", key_id="", key_type="secret")
    derived = lifecycle.derived_id("txn", who, RequestContext("req", "cap-2"), "modify", second["id"], "capture", "3000")
    dal.put(dal.payments_table(), {
        "pk": f"TXN#{derived}", "sk": "TXN", "id": derived, "merchant_id": mid, "mode": "live",
        "payment_id": second["id"], "type": "capture", "status": "failed", "amount": 3000, "currency": "EUR",
        "card_brand": "visa", "card_last4": "1111", "response_code": "05", "response_message": "Do not honor",
        "processor_reason": "Refused", "created_at": second["created_at"]})
    again = act("capture", live, second["id"], {"amount": 3000}, idem="cap-2")
    assert again.status == 409 and again.error["code"] == "PROCESSOR_REFUSED", again.body  # that request's outcome
    ledger = fake_adyen.payments[second["processor_reference"]]
    assert not [op for op in ledger.operations if op[0] == "capture"]  # and no second call to Adyen
