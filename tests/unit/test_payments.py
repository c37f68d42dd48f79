"""The payments API as a merchant relies on it: handlers invoked with events/, moto in-process."""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import pytest

from tahsil.kernel.events import payload_of, payload_text
from tests.support.lambdas import handler_of, invoke, load_event
from tests.support.payments import CARD, act, authorize, body, get, table_items


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


# ------------------------------------------------------------------ authorize and sale


def test_authorize_holds_funds_and_writes_payment_transaction_and_event_together(sk: str) -> None:
    answer = authorize(sk)
    assert answer.status == 200
    assert answer.headers["x-request-id"]
    payment = answer.data
    assert payment["status"] == "authorized"
    assert payment["card_brand"] == "visa" and payment["card_last4"] == "4242"
    assert payment["response_code"] == "00" and payment["fraud_decision"] == "approve"
    assert payment["expires_at"] > payment["created_at"]

    rows = table_items()
    kinds = sorted(r["pk"].split("#")[0] for r in rows)
    assert kinds == ["CNT", "EVTS", "PAY", "TXN", "VEL"]  # CNT: the merchant's transaction totals, counted in the same write
    [counter] = [r for r in rows if r["pk"].startswith("CNT")]
    assert counter["all"] == 1 and counter["authorized"] == 1
    event = next(r for r in rows if r["pk"].startswith("EVTS#"))
    assert event["type"] == "payment.authorized"
    assert payload_of(event)["data"]["object"]["id"] == payment["id"]


def test_card_number_is_encrypted_and_cvv_is_never_stored(sk: str) -> None:
    authorize(sk, body(card={"cvv": "987"}))
    # binary attributes are event payloads (compressed JSON), checked as the text they hold, or the sealed
    # card and its fingerprint (raw bytes), checked as their bytes
    def as_text(raw: Any) -> str:
        data = bytes(getattr(raw, "value", raw))
        assert b"4242424242424242" not in data
        try:
            return payload_text({"payload": raw})
        except zlib.error:
            return data.hex()

    dump = json.dumps(table_items(), default=as_text)
    assert "4242424242424242" not in dump

    def leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
        if isinstance(value, dict):
            return [leaf for k, v in value.items() for leaf in leaves(v, k)]
        if isinstance(value, list):
            return [leaf for v in value for leaf in leaves(v, key)]
        if key == "payload":  # an event's JSON (stored compressed), as it will be sent
            return leaves(payload_of({"payload": value}))
        if isinstance(value, bytes):  # another binary attribute: its bytes
            return [(key, value)]
        return [(key, value)]

    found = leaves(table_items())
    assert not [k for k, _ in found if any(word in k.lower() for word in ("cvv", "cvc", "security_code"))]
    assert not [v for _, v in found if str(v) == "987"]
    # Nor inside a text, except by chance inside random ids, ciphertext or hashes (base64/hex noise).
    noise = ("id", "pk", "sk", "gsi1pk", "gsi1sk", "ciphertext", "nonce", "wrapped_key", "card_fingerprint",
             "key_hash", "transaction_id", "sequence")
    assert not [(k, v) for k, v in found if isinstance(v, str) and "987" in v and k not in noise
                and not k.endswith("_id") and not k.endswith("_at")], "the CVV appears in a stored value"
    payment = next(r for r in table_items() if r["pk"].startswith("PAY"))
    from tahsil.store import crypto

    sealed = payment["card_sealed"]  # one binary attribute: version, wrapped data key, IV, AES-GCM
    assert sealed[0] == crypto.CardVault.COMPACT_VERSION and len(sealed) == 3 + int.from_bytes(sealed[1:3], "big") + 12 + 16 + 16
    context = f"{payment['merchant_id']}/{payment['id']}"
    assert crypto.vault.unseal(payment["card_sealed"], context, payment["merchant_id"]) == CARD["number"]
    with pytest.raises(Exception):  # noqa: B017,PT011 - bound to its payment (AES-GCM's AAD): another context fails
        crypto.vault.unseal(payment["card_sealed"], f"{payment['merchant_id']}/pay_other", payment["merchant_id"])
    assert payment["card_fingerprint"].hex() == crypto.card_fingerprint(CARD["number"])
    assert "card_bin" not in payment  # derivable from the sealed card, read by nothing
    older = crypto.vault.encrypt(CARD["number"], context=context, merchant=payment["merchant_id"])  # the map form
    assert crypto.vault.unseal(older, context, payment["merchant_id"]) == CARD["number"]  # still opens


def test_sale_captures_at_once(sk: str) -> None:
    answer = authorize(sk, body(card={"number": "5555555555554444"}), sale=True)
    assert answer.status == 200
    assert answer.data["status"] == "captured"
    assert answer.data["card_brand"] == "mastercard"
    assert answer.data["captured_amount"] == 9999


@pytest.mark.parametrize(
    ("number", "code"),
    [("4000000000000002", "05"), ("4000000000009995", "51"), ("4000000000000069", "54"),
     ("4000000000000127", "N7"), ("4000000000000119", "96")],
)
def test_test_cards_decline_with_the_seed_codes_and_store_a_failed_payment(sk: str, number: str, code: str) -> None:
    answer = authorize(sk, body(card={"number": number}))
    assert answer.status == 402
    assert answer.error["code"] == "PAYMENT_DECLINED"
    assert answer.error["decline_code"] == code
    stored = get(sk, answer.error["payment_id"])
    assert stored.data["status"] == "failed"
    assert stored.data["response_code"] == code


def test_risky_card_is_declined_by_fraud_rules_with_score_above_70(sk: str) -> None:
    answer = authorize(sk, body(card={"number": "4000000000000259"}))
    assert answer.status == 402
    assert answer.error["fraud_score"] > 70
    assert "high fraud risk" in answer.error["message"]


OTHER_CARD = {"number": "4111111111111111"}  # Luhn-valid, not a documented test card: every rule applies


def test_fraud_score_is_deterministic_and_velocity_moves_it_to_review_then_decline(sk: str) -> None:
    decisions = [authorize(sk, body(amount=100, card=OTHER_CARD)) for _ in range(11)]
    first = [a.data["fraud_decision"] for a in decisions[:3]]
    assert first == ["approve"] * 3
    assert decisions[5].data["fraud_decision"] == "review"  # 6th attempt this hour
    assert decisions[10].status == 402  # 11th: velocity >= 10 adds 75 points
    assert decisions[10].error["fraud_score"] > 70


def test_an_attempt_is_counted_before_its_payment_is_written_so_a_failed_write_over_counts(
        sk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.store import dal

    def velocity() -> int:
        return sum(r["n"] for r in table_items() if r["pk"].startswith("VEL#"))

    real = dal.transact
    monkeypatch.setattr(dal, "transact", lambda actions: (_ for _ in ()).throw(RuntimeError("DynamoDB went away")))
    failed = authorize(sk, body(amount=100, card=OTHER_CARD))
    assert failed.status == 500 and not [r for r in table_items() if r["pk"].startswith("PAY")]
    assert velocity() == 1  # counted though nothing landed: stricter, never laxer
    monkeypatch.setattr(dal, "transact", real)
    answers = [authorize(sk, body(amount=100, card=OTHER_CARD)) for _ in range(5)]
    assert velocity() == 6
    assert [a.data["fraud_decision"] for a in answers] == ["approve"] * 4 + ["review"]  # the 6th attempt: review


def test_requests_that_make_no_payment_give_their_early_count_back(sk: str) -> None:
    def velocity() -> int:
        return sum(r["n"] for r in table_items() if r["pk"].startswith("VEL#"))

    assert authorize(sk, body(amount=100, card=OTHER_CARD), idem="v-1").status == 200
    assert velocity() == 1
    assert authorize(sk, body(amount=100, card=OTHER_CARD), idem="v-1").headers["idempotent-replayed"] == "true"
    assert authorize(sk, body(amount=200, card=OTHER_CARD), idem="v-1").status == 409  # another body, same key
    assert authorize(sk, body(amount=10**12, card=OTHER_CARD)).status == 400  # refused before any payment
    assert velocity() == 1  # counted while the lock was taken, given back when no payment took the count
    declined = authorize(sk, body(amount=100, card={"number": "4000000000000002"}))
    assert declined.status == 402 and velocity() == 2  # a declined payment is an attempt: it keeps its count


@pytest.mark.parametrize("number", ["4242424242424242", "5555555555554444"])
def test_seed_approval_cards_approve_every_time_in_test_mode_whatever_the_amount(sk: str, number: str) -> None:
    answers = [authorize(sk, body(amount=100, card={"number": number})) for _ in range(12)]
    answers.append(authorize(sk, body(amount=2_000_000, card={"number": number})))  # 20,000 USD: +35 on other cards
    answers.append(authorize(sk, body(amount=100, card={"number": number}), sale=True))
    assert [a.status for a in answers] == [200] * 14
    assert {(a.data["fraud_score"], a.data["fraud_decision"], a.data["response_code"]) for a in answers} == {(0, "approve", "00")}
    assert answers[-1].data["status"] == "captured"


def test_seed_decline_cards_keep_their_code_and_gain_no_fraud_points_however_often_used(sk: str,
                                                                                     merchant: dict[str, Any]) -> None:
    from tahsil.identity import account

    # 22 authorizations in well under a second: above the default 20/s, which is not what this test is about.
    account.set_rate_limits(merchant["merchant_id"], {"payments": {"per_second": 1000}})
    for _ in range(11):
        answer = authorize(sk, body(amount=2_000_000, card={"number": "4000000000009995"}))
        assert answer.status == 402
        assert (answer.error["decline_code"], answer.error["fraud_score"]) == ("51", 0)
    for _ in range(11):
        answer = authorize(sk, body(card={"number": "4000000000000259"}))
        assert (answer.status, answer.error["decline_code"], answer.error["fraud_score"]) == (402, "59", 85)
        assert answer.error["message"] == "payment declined: high fraud risk (score: 85)"


def test_velocity_test_cards_trip_the_velocity_rule_on_the_first_attempt(sk: str) -> None:
    declined = authorize(sk, body(amount=100, card={"number": "4000000000006975"}))
    assert declined.status == 402
    assert (declined.error["decline_code"], declined.error["fraud_score"]) == ("59", 75)
    stored = get(sk, declined.error["payment_id"]).data
    assert (stored["status"], stored["fraud_decision"]) == ("failed", "decline")
    review = authorize(sk, body(amount=100, card={"number": "4000000000004970"}))
    assert review.status == 200
    assert (review.data["status"], review.data["fraud_score"], review.data["fraud_decision"]) == ("authorized", 40, "review")


def test_amount_rule_still_applies_to_other_cards_in_test_mode(sk: str) -> None:
    answer = authorize(sk, body(amount=2_000_000, card=OTHER_CARD))
    assert (answer.status, answer.data["fraud_score"], answer.data["fraud_decision"]) == (200, 35, "review")


def test_live_mode_refuses_test_cards_and_runs_velocity_and_amount_rules_on_real_cards(merchant: dict[str, Any],
                                                                                        fake_adyen: Any) -> None:
    from tests.support.connectors import LIVE_CARD, connect

    connect(merchant["merchant_id"], fake_adyen)
    live = merchant["keys"]["live"]["secret"]
    for number in ("4242424242424242", "4000000000009995", "4000000000006975"):  # seed and velocity test cards
        refused = authorize(live, body(amount=100, card={"number": number}))
        assert refused.status == 402 and refused.error["code"] == "TEST_CARD_IN_LIVE_MODE", number
    decisions = [authorize(live, body(amount=100, card=LIVE_CARD)) for _ in range(11)]
    assert [a.data["fraud_decision"] for a in decisions[:3]] == ["approve"] * 3
    assert decisions[5].data["fraud_decision"] == "review"
    assert decisions[10].status == 402 and decisions[10].error["fraud_score"] == 75
    big = authorize(live, body(amount=2_000_000, card={**LIVE_CARD, "number": "5105105105105100"}))
    assert (big.data["fraud_score"], big.data["fraud_decision"]) == (35, "review")


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"currency": "USD", "card": CARD}, "amount"),
        (body(amount=0), "amount"),
        (body(amount="100"), "amount"),
        (body(amount=10.5), "amount"),
        (body(currency="XYZ"), "currency"),
        (body(currency="US"), "currency"),
        (body(card={"number": "4242424242424241"}), "card.number"),
        (body(card={"number": "42424242"}), "card.number"),
        (body(card={"exp_year": 2020}), "card"),
        (body(card={"exp_month": 13}), "card.exp_month"),
        (body(card={"cvv": "12"}), "card.cvv"),
        (body(colour="red"), "colour"),
        (body(amount=10_000_000_01), "amount"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(sk: str, payload: dict[str, Any], param: str) -> None:
    answer = authorize(sk, payload)
    assert answer.status == 400
    assert answer.body["success"] is False
    assert answer.error["param"] == param
    assert answer.error["request_id"]


def test_malformed_json_is_a_400(sk: str) -> None:
    answer = authorize(sk, '{"amount": 10,')
    assert answer.status == 400
    assert answer.error["param"] == "body"


def test_currency_minor_units_bound_the_amount(sk: str) -> None:
    # IQD has three decimals: 10M IQD is 10_000_000_000 fils.
    assert authorize(sk, body(currency="IQD", amount=10_000_000_000)).status == 200
    assert authorize(sk, body(currency="IQD", amount=10_000_000_001)).status == 400


# ------------------------------------------------------------------ capture, void, refund


def test_partial_capture_then_refunds_never_exceed_the_capture(sk: str) -> None:
    pid = authorize(sk, body(amount=10000)).data["id"]
    captured = act("capture", sk, pid, {"amount": 6000})
    assert captured.status == 200 and captured.data["status"] == "captured"
    assert captured.data["captured_amount"] == 6000

    first = act("refund", sk, pid, {"amount": 2500, "reason": "damaged"})
    assert first.data["status"] == "partially_refunded"
    assert first.data["refunded_amount"] == 2500 and first.data["remaining_amount"] == 3500

    too_much = act("refund", sk, pid, {"amount": 3501, "reason": "again"})
    assert too_much.status == 400 and too_much.error["param"] == "amount"

    rest = act("refund", sk, pid, {"amount": 3500, "reason": "rest"})
    assert rest.data["status"] == "refunded" and rest.data["refunded_amount"] == 6000
    assert act("refund", sk, pid, {"amount": 1, "reason": "more"}).status == 409


def test_capture_above_authorized_is_400_and_second_capture_is_409(sk: str) -> None:
    pid = authorize(sk, body(amount=500)).data["id"]
    assert act("capture", sk, pid, {"amount": 501}).status == 400
    assert act("capture", sk, pid, {}).data["captured_amount"] == 500
    again = act("capture", sk, pid, {})
    assert again.status == 409
    assert again.error["message"] == "payment already captured"


def test_void_releases_an_authorization_and_cannot_void_a_capture(sk: str) -> None:
    pid = authorize(sk).data["id"]
    voided = act("void", sk, pid, {"reason": "Customer requested order cancellation"})
    assert voided.data["status"] == "voided" and voided.data["void_reason"].startswith("Customer")
    assert act("void", sk, pid, {"reason": "twice"}).status == 409
    sold = authorize(sk, sale=True).data["id"]
    refused = act("void", sk, sold, {"reason": "late"})
    assert refused.status == 409 and "use refund" in refused.error["message"]
    assert act("void", sk, pid, {}).status == 400  # reason is required


def test_refund_of_an_authorization_is_refused(sk: str) -> None:
    pid = authorize(sk).data["id"]
    assert act("refund", sk, pid, {"amount": 1, "reason": "x"}).status == 409


def test_an_authorization_past_expires_at_reads_expired_and_cannot_be_captured(sk: str) -> None:
    from tahsil.store import dal

    pid = authorize(sk).data["id"]
    dal.update(dal.payments_table(), f"PAY#{pid}", "PAY", "SET expires_at = :past",
               vals=dal.values(past="2020-01-01T00:00:00Z"))
    assert get(sk, pid).data["status"] == "expired"
    answer = act("capture", sk, pid, {})
    assert answer.status == 410 and answer.error["code"] == "AUTHORIZATION_EXPIRED"


def test_every_change_emits_its_event_with_a_growing_sequence(sk: str) -> None:
    pid = authorize(sk).data["id"]
    act("capture", sk, pid, {"amount": 5000})
    act("refund", sk, pid, {"amount": 100, "reason": "r"})
    events = sorted((payload_of(r) for r in table_items() if r["pk"].startswith("EVT")),
                    key=lambda e: e["sequence"])
    assert [e["type"] for e in events] == ["payment.authorized", "payment.captured", "payment.refunded"]
    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert events[1]["data"]["previous_attributes"]["status"] == "authorized"


# ------------------------------------------------------------------ authentication and isolation


def test_missing_unknown_and_publishable_keys_are_401(merchant: dict[str, Any]) -> None:
    assert authorize("").status == 401
    assert authorize("sk_test_" + "x" * 32).status == 401
    # A publishable key is a real key used in the wrong place: 403 naming why (see docs/api.md).
    refused = authorize(merchant["keys"]["test"]["publishable"])
    assert refused.status == 403 and refused.error["code"] == "PUBLISHABLE_KEY_NOT_ALLOWED"


def test_bearer_authorization_is_accepted(sk: str) -> None:
    event = load_event("payments-authorize", body=body())
    event["headers"].pop("X-API-Key")
    event["multiValueHeaders"].pop("X-API-Key")
    event["headers"]["Authorization"] = f"Bearer {sk}"
    event["headers"].pop("Idempotency-Key")
    assert invoke("AuthorizePaymentFunction", event).status == 200


def test_other_merchants_and_other_modes_see_nothing(merchant: dict[str, Any]) -> None:
    from tahsil.console import ops

    pid = authorize(merchant["keys"]["test"]["secret"]).data["id"]
    other = ops.create_merchant("Other Store")
    for key in (other["keys"]["test"]["secret"], merchant["keys"]["live"]["secret"]):
        answer = get(key, pid)
        assert answer.status == 404
        assert answer.error["message"] == "payment not found"
        assert act("capture", key, pid, {}).status == 404


def test_a_malformed_id_is_a_400_naming_it(sk: str) -> None:
    answer = get(sk, "not-an-id")
    assert answer.status == 400 and answer.error["param"] == "id"


# ------------------------------------------------------------------ idempotency


def test_same_key_same_body_replays_the_first_answer(sk: str) -> None:
    first = authorize(sk, body(), idem="order-1")
    second = authorize(sk, body(), idem="order-1")
    assert second.status == first.status == 200
    assert second.body == first.body
    assert second.raw["body"] == first.raw["body"]  # the very bytes of the first answer
    assert second.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert sum(1 for r in table_items() if r["pk"].startswith("PAY")) == 1


def test_the_idempotency_record_holds_the_answer_compressed_in_one_write_unit(sk: str) -> None:
    from tahsil.api import idempotency
    from tahsil.kernel.config import settings
    from tahsil.store import dal

    first = authorize(sk, body(metadata={"order_id": "A-1", "note": "ünïcode ✓"}), idem="packed-1")
    [record] = dal._ddb().scan(TableName=settings().idempotency_table)["Items"]
    stored = json.loads(record["data"]["S"])
    assert list(stored) == ["z1"]
    assert len(json.dumps(dal.load(record))) < 1024  # one write unit, with room for a merchant's metadata
    answer = idempotency.unpack(stored)
    assert answer == {"status": 200, "body": first.body}
    # A record written before compression (the answer as is) still replays as it was.
    assert idempotency.unpack({"status": 402, "body": {"success": False}}) == {"status": 402, "body": {"success": False}}


def test_a_replayed_decline_is_the_same_402_without_a_second_attempt(sk: str) -> None:
    declined = body(card={"number": "4000000000000002"})
    first = authorize(sk, declined, idem="d-1")
    again = authorize(sk, declined, idem="d-1")
    assert first.status == again.status == 402
    # The same answer, carrying the replaying request's own id (the same as its X-Request-Id: issue 11)
    assert {**again.error, "request_id": None} == {**first.error, "request_id": None}
    assert again.error["request_id"] == again.headers["x-request-id"] != first.error["request_id"]
    assert sum(1 for r in table_items() if r["pk"].startswith("PAY")) == 1


def test_same_key_with_a_different_body_is_409(sk: str) -> None:
    authorize(sk, body(amount=100), idem="k")
    answer = authorize(sk, body(amount=200), idem="k")
    assert answer.status == 409 and answer.error["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_idempotency_keys_are_scoped_to_merchant_and_mode(merchant: dict[str, Any], fake_adyen: Any) -> None:
    from tests.support.connectors import LIVE_CARD, connect

    connect(merchant["merchant_id"], fake_adyen)  # live mode takes real cards through a processor connector only
    test_key, live_key = merchant["keys"]["test"]["secret"], merchant["keys"]["live"]["secret"]
    a = authorize(test_key, body(), idem="shared")
    b = authorize(live_key, body(card=LIVE_CARD), idem="shared")
    assert a.status == b.status == 200 and a.data["id"] != b.data["id"]
    assert b.data["livemode"] is True


def test_the_invocations_lambda_context_bounds_its_idempotency_claim(sk: str) -> None:
    """An in-progress record is free again once the invocation that wrote it has run out of time: the
    record's in_progress_expiration is the invocation's own deadline (tahsil.api.idempotency.run)."""
    from tahsil.kernel.config import settings
    from tahsil.store import dal
    from tahsil_local.gateway import LambdaContext

    event = load_event("payments-authorize", key=sk, body=body(), headers={"Idempotency-Key": "ctx-1"})
    context = LambdaContext("AuthorizePaymentFunction", 512, "req-ctx-1", deadline=time.monotonic() + 15)
    before = int(time.time() * 1000)
    answer = handler_of("AuthorizePaymentFunction")(event, context)
    assert answer["statusCode"] == 200
    [record] = [dal.load(item) for item in dal._ddb().scan(TableName=settings().idempotency_table)["Items"]]
    assert before + 13_000 <= record["in_progress_expiration"] <= int(time.time() * 1000) + 15_000


def test_an_idempotency_key_over_255_characters_is_400(sk: str) -> None:
    answer = authorize(sk, body(), idem="k" * 256)
    assert answer.status == 400 and answer.error["param"] == "Idempotency-Key"


# ------------------------------------------------------------------ lists and transactions


def test_payments_list_pages_with_a_cursor_newest_first(sk: str) -> None:
    ids = [authorize(sk, body(amount=100 + i)).data["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2"} | ({"starting_after": cursor} if cursor else {})
        page = invoke("ListPaymentsFunction", load_event("payments-list", key=sk, query=query)).data
        seen += [p["id"] for p in page["payments"]]
        if not page["has_more"]:
            break
        cursor = page["next_starting_after"]
    assert seen == list(reversed(ids))


def test_payments_list_filters_by_status(sk: str) -> None:
    authorize(sk)
    authorize(sk, sale=True)
    page = invoke("ListPaymentsFunction", load_event("payments-list", key=sk, query={"status": "captured"})).data
    assert [p["status"] for p in page["payments"]] == ["captured"]
    bad = invoke("ListPaymentsFunction", load_event("payments-list", key=sk, query={"limit": "101"}))
    assert bad.status == 400 and bad.error["param"] == "limit"


def test_each_operation_is_a_transaction_with_seed_defaults(sk: str) -> None:
    pid = authorize(sk).data["id"]
    act("capture", sk, pid, {})
    authorize(sk, body(card={"number": "4000000000009995"}))
    listing = invoke("ListTransactionsFunction", load_event("transactions-list", key=sk, query={})).data
    assert listing["total"] == 3 and listing["limit"] == 10 and listing["offset"] == 0
    assert sorted(t["type"] for t in listing["transactions"]) == ["authorization", "capture", "decline"]
    failed = invoke("ListTransactionsFunction", load_event("transactions-list", key=sk, query={"status": "failed"}))
    assert failed.data["total"] == 1
    one = listing["transactions"][0]
    got = invoke("GetTransactionFunction", load_event("transactions-get", key=sk, path_id=one["id"]))
    assert got.data == one


def test_the_seed_base_path_reaches_the_same_route_with_the_canonical_path(sk: str) -> None:
    """A custom domain's base-path mapping ``api`` passes ``/api/v1/...`` as the path and ``/v1/...`` as the
    resource: authentication (scopes), routing and idempotency see the canonical path."""
    event = load_event("payments-authorize", key=sk, body=body(), headers={"Idempotency-Key": "seed-base-path"})
    event["path"] = "/api" + event["path"]
    first = invoke("AuthorizePaymentFunction", event)
    assert first.status == 200 and first.data["status"] == "authorized"
    canonical = load_event("payments-authorize", key=sk, body=body(), headers={"Idempotency-Key": "seed-base-path"})
    again = invoke("AuthorizePaymentFunction", canonical)
    assert again.data["id"] == first.data["id"] and again.headers["idempotent-replayed"] == "true"
    got = load_event("payments-get", key=sk, path_id=first.data["id"])
    got["path"] = "/api" + got["path"]
    assert invoke("GetPaymentFunction", got).data["id"] == first.data["id"]
    assert invoke("GetPaymentFunction", {**got, "headers": {}, "multiValueHeaders": {}}).status == 401


def list_txns(sk: str, **query: str):
    return invoke("ListTransactionsFunction", load_event("transactions-list", key=sk, query=query))


def test_transaction_totals_come_from_counters_not_from_counting_history(sk: str, merchant: dict[str, Any],
                                                                         fake_adyen: Any) -> None:
    from tahsil.store import dal
    from tests.support.connectors import LIVE_CARD, connect

    pid = authorize(sk).data["id"]
    act("capture", sk, pid, {})
    connect(merchant["merchant_id"], fake_adyen)  # live mode takes real cards through a processor connector only
    other = authorize(merchant["keys"]["live"]["secret"], body(card=LIVE_CARD)).data["id"]  # another mode counts apart
    assert other
    calls: list[dict[str, Any]] = []
    client = dal._ddb()
    original = client.query

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(**kwargs)

    client.query = spy
    try:
        listing = list_txns(sk, limit="1").data
    finally:
        client.query = original
    assert listing["total"] == 2 and listing["has_more"] is True and len(listing["transactions"]) == 1
    assert not any(c.get("Select") == "COUNT" for c in calls) and len(calls) == 2  # the counter shards, one page
    assert list_txns(sk, status="captured").data["total"] == 1
    assert list_txns(sk, status="voided").data["total"] == 0


def test_transaction_counters_stay_exact_under_concurrent_writes(sk: str, merchant: dict[str, Any]) -> None:
    import threading

    from tahsil.identity import account

    account.set_rate_limits(merchant["merchant_id"], {"payments": {"per_second": 1000}})  # 24 writes at once

    from tests.support.webhooks import card_number

    pids = [authorize(sk, body(card={"number": card_number(300 + n)})).data["id"] for n in range(8)]
    statuses: list[int] = []

    def work(n: int, pid: str) -> None:
        statuses.append(act("capture", sk, pid, {}).status)
        statuses.append(authorize(sk, body(card={"number": card_number(400 + n)})).status)

    threads = [threading.Thread(target=work, args=(n, pid)) for n, pid in enumerate(pids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert statuses.count(200) == 16
    rows = [r for r in table_items() if r["pk"].startswith("TXN")]
    listing = list_txns(sk, limit="100").data
    assert listing["total"] == len(rows) == len(listing["transactions"]) == 24
    for status in ("authorized", "captured"):
        assert list_txns(sk, status=status).data["total"] == sum(r["status"] == status for r in rows)


def test_transactions_page_with_offset_up_to_1000_then_with_starting_after(sk: str) -> None:
    ids = [authorize(sk, body(amount=100 + i)).data["id"] for i in range(5)]
    first = list_txns(sk, limit="2", offset="1").data
    assert [t["payment_id"] for t in first["transactions"]] == list(reversed(ids))[1:3]
    assert first["has_more"] is True and first["next_starting_after"] == first["transactions"][-1]["id"]
    rest = list_txns(sk, limit="10", starting_after=first["next_starting_after"]).data
    assert [t["payment_id"] for t in rest["transactions"]] == list(reversed(ids))[3:]
    assert rest["has_more"] is False and rest["next_starting_after"] is None and rest["total"] == 5
    too_far = list_txns(sk, offset="1001")
    assert too_far.status == 400 and too_far.error["param"] == "offset" and "starting_after" in too_far.error["message"]
    assert list_txns(sk, offset="1000").data["transactions"] == []
    unknown = list_txns(sk, starting_after="txn_doesnotexist")
    assert unknown.status == 400 and unknown.error["param"] == "starting_after"


def get_txn(key: str, txn_id: str):
    return invoke("GetTransactionFunction", load_event("transactions-get", key=key, path_id=txn_id))


def test_transactions_live_in_their_merchants_partition_under_time_ordered_ids(merchant: dict[str, Any]) -> None:
    from tahsil.console import ops
    from tahsil.kernel.ids import looks_like

    sk = merchant["keys"]["test"]["secret"]
    pid = authorize(sk).data["id"]
    act("capture", sk, pid, {})
    assert act("refund", sk, pid, {"amount": 100, "reason": "customer request"}).status == 200
    rows = [r for r in table_items() if r["pk"].startswith("TXN")]
    assert {r["pk"] for r in rows} == {f"TXN#{merchant['merchant_id']}#test"}
    assert all(r["sk"] == r["id"] and looks_like("txn", r["id"]) and len(r["id"]) == 24 for r in rows)
    owner = f"{merchant['merchant_id']}#test"  # one index copy each: the status key, for status-filtered listings
    assert all(r["gsi1pk"] == f"{owner}#TXS#{r['status']}" and r["gsi1sk"] == r["id"] for r in rows)
    listing = list_txns(sk).data["transactions"]
    assert [t["type"] for t in listing] == ["refund", "capture", "authorization"]  # newest first: the ids' order
    assert [t["id"] for t in listing] == sorted((r["id"] for r in rows), reverse=True)
    assert get_txn(sk, listing[0]["id"]).data == listing[0]
    other = ops.create_merchant("Other Shop")
    for key in (other["keys"]["test"]["secret"], merchant["keys"]["live"]["secret"]):  # isolation by the key itself
        missing = get_txn(key, listing[0]["id"])
        assert missing.status == 404 and missing.error["message"] == "transaction not found"
        assert list_txns(key).data["transactions"] == []
        assert list_txns(key, starting_after=listing[0]["id"]).status == 400


def test_transactions_written_before_the_partition_layout_are_still_found_and_listed_last(
        sk: str, merchant: dict[str, Any]) -> None:
    from tahsil.kernel import clock
    from tahsil.kernel.events import owner_keys
    from tahsil.kernel.principal import Principal
    from tahsil.payments import payments
    from tahsil.store import dal

    p = Principal(merchant_id=merchant["merchant_id"], mode="test", key_id="", key_type="secret")
    earlier = clock.now().replace(year=2025)
    legacy = []
    for n in range(3):  # as the older layout wrote them: TXN#<id> / TXN, listed through the by_owner index
        moment = earlier.replace(minute=n)
        row = {"pk": f"TXN#txn_legacy{n:012d}", "sk": "TXN", **owner_keys(p, "TXN", moment, f"txn_legacy{n:012d}"),
               "id": f"txn_legacy{n:012d}", "merchant_id": p.merchant_id, "mode": "test", "payment_id": "pay_legacy000001",
               "type": "authorization", "status": "authorized", "amount": 100, "currency": "USD", "card_brand": "visa",
               "card_last4": "4242", "response_code": "00", "response_message": "Approved", "created_at": clock.iso(moment)}
        dal.transact(payments.transaction_actions(dal.payments_table(), p, row))
        legacy.append(row["id"])
    new = [authorize(sk).data["transaction_id"] for _ in range(2)]
    assert get_txn(sk, legacy[0]).data["id"] == legacy[0]
    everything = [t["id"] for t in list_txns(sk, limit="10").data["transactions"]]
    assert everything == list(reversed(new)) + list(reversed(legacy))
    first = list_txns(sk, limit="3").data
    assert [t["id"] for t in first["transactions"]] == everything[:3] and first["total"] == 5
    rest = list_txns(sk, limit="3", starting_after=first["next_starting_after"]).data
    assert [t["id"] for t in rest["transactions"]] == everything[3:] and rest["has_more"] is False
    assert [t["id"] for t in list_txns(sk, offset="4").data["transactions"]] == everything[4:]
    other = Principal(merchant_id="mer_someoneelse00000000", mode="test", key_id="", key_type="secret")
    assert payments.load_transaction(other.owner, legacy[0]) is None
    assert payments.load_transaction(f"{merchant['merchant_id']}#live", legacy[0]) is None
