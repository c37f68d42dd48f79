"""The ledger as a merchant relies on it: every money movement of a payment is a balanced balance transaction
written with the change; the balance (counters) equals the sum of the entries; test and live are separate books."""

from __future__ import annotations

from typing import Any

from tests.support.connectors import act, pay
from tests.support.lambdas import invoke, load_event


def _balance(key: str) -> dict[str, Any]:
    answer = invoke("GetBalanceFunction", load_event("balance-get", key=key))
    assert answer.status == 200, answer.body
    return answer.data


def _list(key: str, **query: str) -> Any:
    return invoke("ListBalanceTransactionsFunction", load_event("balance-transactions-list", key=key, query=query))


def _pending(key: str) -> dict[str, int]:
    return {m["currency"]: m["amount"] for m in _balance(key)["pending"]}


def test_capture_and_refund_write_balanced_entries_and_move_the_balance(merchant: dict[str, Any]) -> None:
    from tahsil.payments import ledger

    mid, key = merchant["merchant_id"], merchant["keys"]["test"]["secret"]
    sale = pay(key, amount=5000, sale=True, card={"number": "4242424242424242"})
    assert sale.status == 200, sale.body
    auth = pay(key, amount=3000, card={"number": "4242424242424242"})
    assert _pending(key) == {"EUR": 5000}  # an authorization moves no money
    assert act("capture", key, auth.data["id"], body={"amount": 2500}).status == 200
    assert act("refund", key, sale.data["id"], body={"amount": 1200, "reason": "requested_by_customer"}).status == 200
    assert _pending(key) == {"EUR": 5000 + 2500 - 1200}

    rows = ledger.history(mid, "test")
    assert sorted((r["type"], r["amount"]) for r in rows) == [("payment", 2500), ("payment", 5000), ("refund", -1200)]
    assert all(ledger.balanced(r) and isinstance(r["amount"], int) for r in rows)
    assert sum(r["amount"] for r in rows) == 6300
    # live is another book: nothing there
    assert _balance(merchant["keys"]["live"]["secret"])["pending"] == []


def test_balance_transactions_page_with_a_cursor_and_filter(merchant: dict[str, Any]) -> None:
    key = merchant["keys"]["test"]["secret"]
    ids = [pay(key, amount=1000 + i, sale=True, card={"number": "4242424242424242"}).data["id"] for i in range(3)]
    act("refund", key, ids[0], body={"amount": 100, "reason": "requested_by_customer"})
    first = _list(key, limit="2")
    assert first.status == 200, first.body
    assert first.data["has_more"] and len(first.data["data"]) == 2
    rest = _list(key, limit="10", starting_after=first.data["next_starting_after"])
    seen = first.data["data"] + rest.data["data"]
    assert not rest.data["has_more"] and len({b["id"] for b in seen}) == 4
    assert [b["type"] for b in seen][0] == "refund"  # newest first
    refunds = _list(key, type="refund").data["data"]
    assert [(b["amount"], b["source"], b["status"]) for b in refunds] == [(-100, ids[0], "pending")]
    assert {b["source"] for b in _list(key, source=ids[1]).data["data"]} == {ids[1]}
    one = invoke("GetBalanceTransactionFunction", load_event("balance-transactions-get", key=key,
                                                             path_id=refunds[0]["id"]))
    assert one.status == 200 and one.data == refunds[0]
    # another mode's key does not see it; a malformed id is a 400 naming it
    other = invoke("GetBalanceTransactionFunction", load_event("balance-transactions-get",
                                                               key=merchant["keys"]["live"]["secret"],
                                                               path_id=refunds[0]["id"]))
    assert other.status == 404
    bad = invoke("GetBalanceTransactionFunction", load_event("balance-transactions-get", key=key, path_id="txn_nope"))
    assert bad.status == 400 and bad.body["error"]["param"] == "id"
    assert _list(key, type="nonsense").status == 400


def test_a_refund_taken_back_and_a_capture_failed_reverse_their_entries(aws_env: Any) -> None:
    from tahsil.payments import ledger

    base = {"merchant_id": "m_1", "mode": "live", "id": "pay_1", "currency": "EUR", "captured_amount": 5000,
            "refunded_amount": 2000}
    import datetime as dt
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    back = ledger.movements(base, {**base, "refunded_amount": 0}, now)
    failed = ledger.movements(base, {**base, "captured_amount": 0, "refunded_amount": 2000}, now)
    from tahsil.store import codec
    rows = [codec.load(a["Put"]["Item"]) for a in back + failed if "Put" in a]
    assert [(r["type"], r["amount"]) for r in rows] == [("refund_failure", 2000), ("payment_failure", -5000)]
    assert all(ledger.balanced(r) for r in rows)
    assert ledger.movements(base, dict(base), now) == []
