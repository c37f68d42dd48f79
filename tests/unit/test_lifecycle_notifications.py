"""The processor's word wins, whenever it comes: late, duplicate and reordered notifications; batches; listings.

Each notification here is what Adyen sends (signed with the merchant's HMAC key by the fake); the payment is
driven through the HTTP handlers first, then the notification is applied to whatever state it finds.
"""

from __future__ import annotations

from typing import Any

import pytest

from tahsil_local.fake_adyen import FakeAdyen
from tests.support.connectors import act, all_items, connect, deliver, events_of, get, notify, pay


@pytest.fixture
def live(merchant: dict[str, Any], fake_adyen: FakeAdyen) -> str:
    connect(merchant["merchant_id"], fake_adyen)
    return str(merchant["keys"]["live"]["secret"])


def _send(merchant_id: str, fake: FakeAdyen, *items: tuple[Any, ...]) -> None:
    """Sign and deliver (event, psp, original, reference, value, success, reason) items as one batch."""
    for event, psp, original, reference, value, success, reason in items:
        fake._notify(event, psp, original, reference, value, "EUR", success, reason)
    assert notify(merchant_id, FakeAdyen.envelope(fake.take_notifications())) == (200, "[accepted]")


def _refund_txn(payment_id: str) -> dict[str, Any]:
    [txn] = [i for i in all_items() if i.get("payment_id") == payment_id and i.get("type") == "refund"
             and i["pk"].startswith("TXN#")]
    return txn


def test_refund_failed_after_refunded_gives_the_amount_back_with_its_event_and_flags_the_payment(
        merchant: dict[str, Any], live: str, fake_adyen: FakeAdyen) -> None:
    mid = merchant["merchant_id"]
    sale = pay(live, amount=5000, sale=True).data
    deliver(mid, fake_adyen)
    assert act("refund", live, sale["id"], {"amount": 2000, "reason": "requested_by_customer"}).status == 200
    deliver(mid, fake_adyen)
    assert get(live, sale["id"]).data["status"] == "partially_refunded"
    txn = _refund_txn(sale["id"])
    _send(mid, fake_adyen, ("REFUND_FAILED", "9990000000000001", sale["processor_reference"], txn["id"], 2000, True,
                            "refund rejected by the issuer"))
    after = get(live, sale["id"]).data
    assert after["status"] == "captured" and after["refunded_amount"] == 0 and after["amount_refundable"] == 5000
    assert after["review"] and "failed after confirming" in after["review"]["reason"]
    assert events_of(sale["id"]).count("payment.refund_failed") == 1
    assert _refund_txn(sale["id"])["status"] == "failed"
    # The same notification again changes nothing.
    _send(mid, fake_adyen, ("REFUND_FAILED", "9990000000000001", sale["processor_reference"], txn["id"], 2000, True,
                            "refund rejected by the issuer"))
    assert events_of(sale["id"]).count("payment.refund_failed") == 1


def test_capture_failed_after_captured_puts_the_authorization_back(merchant: dict[str, Any], live: str,
                                                                  fake_adyen: FakeAdyen) -> None:
    mid = merchant["merchant_id"]
    auth = pay(live, amount=3000).data
    assert act("capture", live, auth["id"], {"amount": 3000}).status == 200
    deliver(mid, fake_adyen)
    assert get(live, auth["id"]).data["status"] == "captured"
    [txn] = [i for i in all_items() if i.get("payment_id") == auth["id"] and i.get("type") == "capture"
             and i["pk"].startswith("TXN#")]
    _send(mid, fake_adyen, ("CAPTURE_FAILED", "9990000000000002", auth["processor_reference"], txn["id"], 3000, True,
                            "capture declined"))
    after = get(live, auth["id"]).data
    assert after["status"] == "authorized" and after["captured_amount"] == 0 and after["amount_capturable"] == 3000
    assert events_of(auth["id"]).count("payment.capture_failed") == 1 and after["review"]


def test_a_late_authorisation_success_wins_over_a_recorded_failure(merchant: dict[str, Any], live: str,
                                                                  fake_adyen: FakeAdyen,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Adyen answered 'in progress' (422/704-like unknowns end unknown, never declined); Tahsil's deadline failed
    the payment; then Adyen's AUTHORISATION success arrives: the payment is authorized, flagged for review."""
    mid = merchant["merchant_id"]
    faults = iter(["hang_before"])
    fake_adyen.fault = lambda op: next(faults, None)
    first = pay(live, amount=4200)
    assert first.status == 202
    monkeypatch.setenv("RECOVERY_DEADLINE_SECONDS", "0")
    from tahsil.payments import recovery

    assert recovery.recover(first.data["id"], first.data["id"]) == "unreachable"
    assert get(live, first.data["id"]).data["status"] == "failed"
    _send(mid, fake_adyen, ("AUTHORISATION", "9990000000000003", None, first.data["id"], 4200, True, None))
    after = get(live, first.data["id"]).data
    assert after["status"] == "authorized" and after["review"] and after["processor_reference"] == "9990000000000003"
    assert events_of(first.data["id"]) == ["payment.authorized", "payment.failed"]


def test_reordered_and_duplicated_settlements_apply_once(merchant: dict[str, Any], live: str,
                                                        fake_adyen: FakeAdyen) -> None:
    mid = merchant["merchant_id"]
    auth = pay(live, amount=2500)
    assert act("capture", live, auth.data["id"], {"amount": 2500}).status == 200
    items = fake_adyen.take_notifications()  # AUTHORISATION, CAPTURE
    batch = list(reversed(items)) + items  # out of order, each twice
    assert notify(mid, FakeAdyen.envelope(batch)) == (200, "[accepted]")
    after = get(live, auth.data["id"]).data
    assert after["status"] == "captured" and after["captured_amount"] == 2500
    assert events_of(auth.data["id"]) == ["payment.authorized", "payment.captured"]


def test_a_foreign_account_in_a_batch_is_accepted_and_ignored_while_the_good_items_apply(
        merchant: dict[str, Any], live: str, fake_adyen: FakeAdyen) -> None:
    mid = merchant["merchant_id"]
    auth = pay(live, amount=1500).data
    assert act("void", live, auth["id"], {"reason": "requested_by_customer"}).status == 200
    good = fake_adyen.take_notifications()
    account = fake_adyen.merchant_account
    fake_adyen.merchant_account = "SomeoneElsesAccount"
    fake_adyen._notify("CAPTURE", "9990000000000004", "9990000000000005", "txn_unknown", 100, "EUR", True, None)
    foreign = fake_adyen.take_notifications()
    fake_adyen.merchant_account = account
    assert notify(mid, FakeAdyen.envelope([good[0], *foreign, *good[1:]])) == (200, "[accepted]")
    assert get(live, auth["id"]).data["status"] == "voided"
    ignored = [i for i in all_items() if i["pk"].startswith("NTF#") and i.get("ignored")]
    assert len(ignored) == 1 and "another merchant account" in ignored[0]["ignored"]


def test_a_bad_signature_still_rejects_the_whole_batch(merchant: dict[str, Any], live: str, fake_adyen: FakeAdyen) -> None:
    auth = pay(live, amount=1500).data
    [item] = fake_adyen.take_notifications()
    item["additionalData"]["hmacSignature"] = "AAAA" + item["additionalData"]["hmacSignature"][4:]
    status, _ = notify(merchant["merchant_id"], FakeAdyen.envelope([item]))
    assert status == 401
    assert events_of(auth["id"]) == ["payment.authorized"]


@pytest.mark.parametrize("mode", ["test", "live"])
def test_transactions_are_listed_with_exact_totals_in_both_modes(merchant: dict[str, Any], fake_adyen: FakeAdyen,
                                                                 mode: str) -> None:
    from tests.support.lambdas import invoke, load_event

    key = merchant["keys"][mode]["secret"]
    if mode == "live":
        connect(merchant["merchant_id"], fake_adyen)
    card = {"number": "4242424242424242"} if mode == "test" else None
    auth = pay(key, amount=1000, card=card).data
    assert act("capture", key, auth["id"], {"amount": 1000}).status == 200
    if mode == "live":
        deliver(merchant["merchant_id"], fake_adyen)
    event = load_event("transactions-list", key=key)
    event["queryStringParameters"] = {"limit": "20", "offset": "0"}
    event["multiValueQueryStringParameters"] = {"limit": ["20"], "offset": ["0"]}
    listed = invoke("ListTransactionsFunction", event)
    assert listed.status == 200, listed.body
    body = listed.body.get("data", listed.body)
    assert body["total"] == 2
    assert sorted((t["type"], t["status"]) for t in body["transactions"]) == [("authorization", "authorized"),
                                                                               ("capture", "captured")]


def test_a_refusal_that_can_pass_later_is_retryable_and_does_not_bind_the_key(merchant: dict[str, Any], live: str,
                                                                           fake_adyen: FakeAdyen) -> None:
    auth = pay(live, amount=1000).data
    assert act("capture", live, auth["id"], {"amount": 1000}).status == 200  # capture_pending
    refused = act("void", live, auth["id"], {"reason": "requested_by_customer"}, idem="void-1")
    assert refused.status == 409 and refused.error["code"] == "MODIFICATION_PENDING" and refused.error["retryable"]
    deliver(merchant["merchant_id"], fake_adyen)  # the capture settles
    again = act("void", live, auth["id"], {"reason": "requested_by_customer"}, idem="void-1")
    assert again.status == 409 and again.error["code"] == "INVALID_STATE"  # ran again: a final refusal now
    assert "retryable" not in again.error


def test_an_expired_live_authorization_is_cancelled_at_the_processor(merchant: dict[str, Any], live: str,
                                                                     fake_adyen: FakeAdyen) -> None:
    from tahsil.payments import expiry
    from tahsil.store import dal

    mid = merchant["merchant_id"]
    auth = pay(live, amount=1800).data
    deliver(mid, fake_adyen)
    dal.update(dal.payments_table(), f"PAY#{auth['id']}", "PAY", "SET expires_at = :past",
               vals=dal.values(past="2000-01-01T00:00:00Z"))
    assert expiry.expire(auth["id"]) is True
    pending = get(live, auth["id"]).data
    assert pending["status"] == "void_pending" and pending["pending_action"]["type"] == "expire"
    [ledger] = fake_adyen.payments.values()
    assert ledger.cancelled  # the hold is released at the processor
    assert expiry.expire(auth["id"]) is False  # the timer firing again does nothing
    deliver(mid, fake_adyen)
    after = get(live, auth["id"]).data
    assert after["status"] == "expired" and after["pending_action"] is None
    assert events_of(auth["id"]) == ["payment.authorized", "payment.expired"]
