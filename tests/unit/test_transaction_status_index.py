"""A status-filtered transaction listing reads O(page), not O(history) (issue 27 item 7).

Every transaction row carries its status in by_owner (``<merchant>#<mode>#TXS#<status>``), written and moved in
the same conditional transaction as the row; the counter shards count the rows that carry it (``ix_<status>``),
so a listing knows when the key covers every row of a status and falls back to the partition otherwise."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

import pytest

from tests.support.lambdas import invoke, load_event

HISTORY = 3000  # captured transactions: the history a rare status must not read through
CARD = {"number": "4242424242424242", "cardholder_name": "John Doe", "exp_month": 12, "exp_year": 2030, "cvv": "123"}


def _authorize(sk: str) -> str:
    body = {"amount": 1500, "currency": "USD", "card": dict(CARD)}
    event = load_event("payments-authorize", key=sk, body=body)
    event["headers"].pop("Idempotency-Key", None)  # the sample's fixed key would replay the first payment
    event["multiValueHeaders"].pop("Idempotency-Key", None)
    answer = invoke("AuthorizePaymentFunction", event)
    assert answer.status == 200, answer.body
    return answer.data["id"]


def _act(action: str, sk: str, pid: str) -> None:
    fn = {"capture": "CapturePaymentFunction", "void": "VoidPaymentFunction"}[action]
    payload = {"reason": "customer cancelled"} if action == "void" else {}
    answer = invoke(fn, load_event(f"payments-{action}", key=sk, path_id=pid, body=payload))
    assert answer.status == 200, answer.body


def _list(sk: str, **query: str) -> dict[str, Any]:
    answer = invoke("ListTransactionsFunction", load_event("transactions-list", key=sk, query=query))
    assert answer.status == 200, answer.body
    return answer.data


def _history(owner_merchant: str, size: int, *, indexed: bool = True) -> None:
    """``size`` captured transactions older than anything the API writes, as the write path builds them."""
    from tahsil.kernel import clock, ids
    from tahsil.payments import payments
    from tahsil.store import dal

    start = clock.now() - dt.timedelta(days=30)
    payment = {"merchant_id": owner_merchant, "mode": "test", "id": "pay_history", "currency": "USD",
               "card_brand": "visa", "card_last4": "4242"}
    rows: list[dict[str, Any]] = []
    shards: dict[str, dict[str, Any]] = {}
    for i in range(size):
        moment = start + dt.timedelta(seconds=i)
        row = payments.transaction_row(payment, txn_id=ids.new_sortable_id("txn", moment), type_="capture",
                                       status="captured", amount=1500, now=moment)
        if not indexed:
            row.pop("gsi1pk"), row.pop("gsi1sk")
        rows.append(row)
        sk = f"S{zlib.crc32(row['id'].encode()) % payments.TXN_COUNTER_SHARDS:02d}"
        shard = shards.setdefault(sk, {"pk": f"CNT#{owner_merchant}#test#TXN", "sk": sk})
        for name in ("all", "captured", *(["ix_captured"] if indexed else [])):
            shard[name] = shard.get(name, 0) + 1
    # Counters of what the API wrote meanwhile are kept: add to them.
    for sk, shard in shards.items():
        names = [n for n in shard if n not in ("pk", "sk")]
        dal.update(dal.payments_table(), shard["pk"], sk, "ADD " + ", ".join(f"#n{i} :v{i}" for i in range(len(names))),
                   names={f"#n{i}": n for i, n in enumerate(names)},
                   vals=dal.values(**{f"v{i}": shard[n] for i, n in enumerate(names)}))
    assert not dal.batch_put(dal.payments_table(), rows)


@pytest.fixture
def reads() -> Any:
    """Every DynamoDB call the handler makes, with the items each read evaluated (ScannedCount)."""
    from botocore.client import BaseClient

    seen: list[tuple[str, int]] = []
    original = BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        answer = original(client, operation, params)
        if client.meta.service_model.service_name == "dynamodb":
            seen.append((operation, int(answer.get("ScannedCount", 1 if operation == "GetItem" else 0))))
        return answer

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    yield seen
    BaseClient._make_api_call = original  # type: ignore[method-assign]


def test_a_rare_status_reads_its_page_not_the_history(merchant: dict[str, Any], reads: list[tuple[str, int]]) -> None:
    sk = merchant["keys"]["test"]["secret"]
    voided = []
    for _ in range(3):
        pid = _authorize(sk)
        _act("void", sk, pid)
        voided.append(pid)
    _history(merchant["merchant_id"], HISTORY)
    reads.clear()
    listing = _list(sk, status="voided", limit="10")
    assert listing["total"] == 3 and listing["has_more"] is False
    assert [t["payment_id"] for t in listing["transactions"]] == voided[::-1]  # newest first
    assert all(t["status"] == "voided" and t["type"] == "void" for t in listing["transactions"])
    queries = [n for op, n in reads if op == "Query"]
    assert len(reads) <= 5, reads  # key, rate-limit counter, counter shards, the page (no scan through history)
    assert sum(queries) <= 8 + 3, reads  # the 8 counter shards and the 3 rows: nothing of the 3,000 others


def test_filtered_pages_follow_each_other_with_offset_and_starting_after(merchant: dict[str, Any],
                                                                        reads: list[tuple[str, int]]) -> None:
    sk = merchant["keys"]["test"]["secret"]
    pids = [_authorize(sk) for _ in range(5)]
    for pid in pids[:2]:
        _act("capture", sk, pid)
    _history(merchant["merchant_id"], 500)
    authorized = _list(sk, status="authorized", limit="100")
    assert authorized["total"] == 5 and [t["payment_id"] for t in authorized["transactions"]] == pids[::-1]
    first = _list(sk, status="authorized", limit="2")
    assert first["has_more"] is True and len(first["transactions"]) == 2
    second = _list(sk, status="authorized", limit="2", starting_after=first["next_starting_after"])
    third = _list(sk, status="authorized", limit="2", starting_after=second["next_starting_after"])
    assert third["has_more"] is False and third["next_starting_after"] is None
    walked = [t["id"] for page in (first, second, third) for t in page["transactions"]]
    assert walked == [t["id"] for t in authorized["transactions"]]
    by_offset = _list(sk, status="authorized", limit="2", offset="2")
    assert [t["id"] for t in by_offset["transactions"]] == walked[2:4]
    captured = _list(sk, status="captured", limit="3")
    assert captured["total"] == 502 and [t["payment_id"] for t in captured["transactions"]][:2] == pids[1::-1]
    reads.clear()
    deep = _list(sk, status="captured", limit="3", starting_after=captured["next_starting_after"])
    assert len(deep["transactions"]) == 3 and deep["has_more"] is True
    assert sum(n for op, n in reads if op == "Query") <= 8 + 4 + 1, reads  # shards, the page and one to tell has_more
    assert _list(sk, status="refunded")["transactions"] == []


def test_rows_written_before_the_status_key_are_still_listed(merchant: dict[str, Any]) -> None:
    sk = merchant["keys"]["test"]["secret"]
    pid = _authorize(sk)
    _act("capture", sk, pid)
    _history(merchant["merchant_id"], 40, indexed=False)  # older rows, no status key, not counted as keyed
    listing = _list(sk, status="captured", limit="100")
    assert listing["total"] == 41 and len(listing["transactions"]) == 41
    assert listing["transactions"][0]["payment_id"] == pid


def test_a_status_move_moves_the_row_between_status_keys_in_its_transaction(merchant: dict[str, Any]) -> None:
    from tahsil.kernel import clock, ids
    from tahsil.kernel.principal import Principal
    from tahsil.payments import payments
    from tahsil.store import dal

    p = Principal(merchant_id=merchant["merchant_id"], mode="test", key_id="", key_type="secret")
    payment = {"merchant_id": p.merchant_id, "mode": "test", "id": "pay_x", "currency": "USD",
               "card_brand": "visa", "card_last4": "4242"}
    now = clock.now()
    row = payments.transaction_row(payment, txn_id=ids.new_sortable_id("txn", now), type_="refund", status="pending",
                                   amount=100, now=now)
    table = dal.payments_table()
    dal.transact(payments.transaction_actions(table, p, row))
    sk = merchant["keys"]["test"]["secret"]
    pending = list(dal.query_owner(table, payments.txn_status_partition(p.owner, "pending")))
    assert [r["id"] for r in pending] == [row["id"]] and _list(sk, status="refunded")["transactions"] == []
    dal.transact(payments.transaction_move_actions(table, row, "refunded", {"response_message": "Refunded"}))
    assert list(dal.query_owner(table, payments.txn_status_partition(p.owner, "pending"))) == []
    moved = _list(sk, status="refunded")
    assert moved["total"] == 1 and [t["id"] for t in moved["transactions"]] == [row["id"]]
    assert payments.transaction_counts(p)["ix_refunded"] == 1 and payments.transaction_counts(p)["ix_pending"] == 0
    with pytest.raises(dal.ConditionFailed):  # the move is conditional on the status read
        dal.transact(payments.transaction_move_actions(table, row, "failed", {}))
