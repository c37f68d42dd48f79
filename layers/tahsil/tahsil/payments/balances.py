"""What a merchant reads of the ledger (``tahsil.payments.ledger``): the balance and its balance transactions.

``GET /v1/balance`` sums the balance counter shards (never the history); ``GET /v1/balance-transactions`` pages a
book's partition newest first with a cursor (``starting_after``, a ``btx_`` id) and filters (``type``,
``created_gte``/``created_lte``, ``payout``, ``source``); ``GET /v1/balance-transactions/{id}`` is one GetItem whose
key comes from the caller's principal: another merchant's or mode's id is simply not there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tahsil.kernel.errors import InvalidRequest, NotFound
from tahsil.kernel.ids import looks_like
from tahsil.kernel.principal import Principal
from tahsil.payments import ledger
from tahsil.store import dal

BtxType = Literal["payment", "payment_failure", "refund", "refund_failure", "fee", "payout", "adjustment", "dispute",
                  "dispute_reversal"]


class Money(BaseModel):
    amount: int
    currency: str


class Balance(BaseModel):
    model_config = ConfigDict(defer_build=True)
    object: Literal["balance"]
    livemode: bool
    available: list[Money]
    pending: list[Money]


class BalanceTransaction(BaseModel):
    model_config = ConfigDict(defer_build=True)
    id: str
    object: Literal["balance_transaction"]
    type: BtxType
    amount: int
    fee: int
    net: int
    currency: str
    status: Literal["pending", "available"]
    available_on: str | None
    source: str
    payout: str | None
    livemode: bool
    created_at: str


class BalanceTransactionList(BaseModel):
    model_config = ConfigDict(defer_build=True)
    data: list[BalanceTransaction]
    has_more: bool
    next_starting_after: str | None


def btx_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "balance_transaction", "type": row["type"], "amount": row["amount"],
            "fee": row["fee"], "net": row["net"], "currency": row["currency"], "status": row["status"],
            "available_on": row.get("available_on"), "source": row["source"], "payout": row.get("payout"),
            "livemode": row["mode"] == "live", "created_at": row["created_at"]}


def get_balance(p: Principal) -> dict[str, Any]:
    return ledger.balance(p.merchant_id, p.mode)


def get_balance_transaction(p: Principal, btx_id: str) -> dict[str, Any]:
    if not looks_like("btx", btx_id):
        raise InvalidRequest("id must be a balance transaction id (btx_...)", param="id")
    row = dal.get(dal.payments_table(), ledger.btx_partition(p.merchant_id, p.mode), btx_id, consistent=False)
    if row is None:
        raise NotFound("balance transaction not found", param="id")
    return btx_view(row)


def list_balance_transactions(p: Principal, *, limit: int, starting_after: str | None = None,
                              type_: str | None = None, created_gte: str | None = None, created_lte: str | None = None,
                              payout: str | None = None, source: str | None = None) -> dict[str, Any]:
    """One page, newest first; ``next_starting_after`` continues it (filters apply to every page alike)."""
    if starting_after is not None and not looks_like("btx", starting_after):
        raise InvalidRequest("starting_after must be a balance transaction id (btx_...)", param="starting_after")
    clauses, names, vals = [], {}, {}
    for attr, op, value in (("type", "=", type_), ("created_at", ">=", created_gte), ("created_at", "<=", created_lte),
                            ("payout", "=", payout), ("source", "=", source)):
        if value is not None:
            key = f"v{len(clauses)}"
            clauses.append(f"#{attr} {op} :{key}")
            names[f"#{attr}"] = attr
            vals[key] = value
    flt = " AND ".join(clauses) or None
    out: list[dict[str, Any]] = []
    start = starting_after
    while len(out) <= limit:
        rows, start = dal.query_page(dal.payments_table(), ledger.btx_partition(p.merchant_id, p.mode), start_sk=start,
                                     filter_expression=flt, names=names or None,
                                     vals=dal.values(**vals) if vals else None, page_size=100)
        out += rows
        if start is None:
            break
    page, has_more = out[:limit], len(out) > limit
    return {"data": [btx_view(r) for r in page], "has_more": has_more,
            "next_starting_after": page[-1]["id"] if has_more and page else None}
