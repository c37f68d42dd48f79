"""The double-entry ledger: every money movement of a payment as balanced entries, in the change's own transaction.

``movements(before, after, now)`` compares a payment before and after a change (``before`` None: a payment
created in that state) and returns the DynamoDB actions to add to the SAME ``TransactWriteItems``:

- one balance transaction row per movement (``BTX#<merchant>#<mode>`` / ``btx_…``, ids sort by time), holding
  its entries: each entry debits one account and credits another by the same amount in the same currency, so
  every entry set balances by construction (``balanced`` checks it, the tests call it on every row);
- one ``ADD`` on a balance counter shard (``BAL#<merchant>#<mode>`` / ``S<n>``, shard chosen by the payment id,
  so concurrent changes of different payments rarely touch the same item): ``pending_<CUR>`` and
  ``available_<CUR>`` in integer minor units. ``balance`` sums the shards; it never reads the history.

Movements (the merchant's view, signed amounts; accounts ``processor`` = what the acquirer owes the merchant,
``merchant`` = the merchant's balance):

    captured_amount rises   -> ``payment``          D processor  C merchant     +amount  (pending)
    captured_amount falls   -> ``payment_failure``  D merchant   C processor    -amount  (CAPTURE_FAILED after CAPTURE)
    refunded_amount rises   -> ``refund``           D merchant   C processor    -amount
    refunded_amount falls   -> ``refund_failure``   D processor  C merchant     +amount  (REFUND_FAILED after REFUND)

Fees, payouts and adjustments are written by settlement through ``entry`` (type ``fee`` / ``payout`` /
``adjustment``); disputes (their own issue) write ``dispute`` and ``dispute_reversal`` rows through ``entry``
too: ``TYPES`` lists every type, ``LEGS`` says which account each debits and credits.
Test and live are separate books: the mode is part of every key.
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.ids import new_sortable_id
from tahsil.store import dal

SHARDS = 8

# type -> (account debited, account credited) for a positive movement amount.
LEGS: dict[str, tuple[str, str]] = {
    "payment": ("processor", "merchant"),
    "payment_failure": ("merchant", "processor"),
    "refund": ("merchant", "processor"),
    "refund_failure": ("processor", "merchant"),
    "fee": ("merchant", "fees"),
    "payout": ("merchant", "bank"),
    "adjustment": ("processor", "merchant"),  # a negative adjustment swaps the legs (see ``entry``)
    "dispute": ("merchant", "processor"),  # hook: the disputes issue writes these two
    "dispute_reversal": ("processor", "merchant"),
}
TYPES = frozenset(LEGS)
# The sign of the merchant's balance change for each type.
_SIGN = {t: (1 if credit == "merchant" else -1) for t, (_, credit) in LEGS.items()}


def book(merchant_id: str, mode: str) -> str:
    return f"{merchant_id}#{mode}"


def btx_partition(merchant_id: str, mode: str) -> str:
    return f"BTX#{book(merchant_id, mode)}"


def balance_partition(merchant_id: str, mode: str) -> str:
    return f"BAL#{book(merchant_id, mode)}"


def shard_of(source: str) -> str:
    return f"S{zlib.crc32(source.encode()) % SHARDS}"


def entry(merchant_id: str, mode: str, type_: str, amount: int, currency: str, source: str, now: dt.datetime, *,
          fee: int = 0, status: str = "pending", payout: str | None = None) -> dict[str, Any]:
    """One balance transaction row: ``amount`` (> 0, minor units) moved as ``type_``, with its balanced entries."""
    if type_ not in LEGS:
        raise ValueError(f"unknown ledger movement {type_!r}")
    if not isinstance(amount, int) or amount <= 0:
        raise ValueError("a movement's amount is a positive integer in minor units")
    debit, credit = LEGS[type_]
    signed = _SIGN[type_] * amount
    btx_id = new_sortable_id("btx", now)
    return {
        "pk": btx_partition(merchant_id, mode), "sk": btx_id, "id": btx_id, "merchant_id": merchant_id, "mode": mode,
        "type": type_, "amount": signed, "fee": fee, "net": signed - fee, "currency": currency, "status": status,
        "available_on": None, "source": source, "payout": payout, "created_at": clock.iso(now),
        "entries": [{"account": debit, "debit": amount, "credit": 0, "currency": currency},
                    {"account": credit, "debit": 0, "credit": amount, "currency": currency}],
    }


def balanced(row: dict[str, Any]) -> bool:
    """Debits equal credits per currency, and the merchant account's net is the row's amount."""
    sums: dict[str, int] = {}
    merchant = 0
    for leg in row["entries"]:
        sums[leg["currency"]] = sums.get(leg["currency"], 0) + leg["debit"] - leg["credit"]
        if leg["account"] == "merchant":
            merchant += leg["credit"] - leg["debit"]
    return all(v == 0 for v in sums.values()) and merchant == row["amount"]


def counter_action(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """The balance shard's ADD for ``row`` (pending or available, by its status)."""
    bucket = "available" if row["status"] == "available" else "pending"
    name = f"{bucket}_{row['currency']}"
    return dal.update_action(table, balance_partition(row["merchant_id"], row["mode"]), shard_of(row["source"]),
                             "ADD #b :d", condition=None, names={"#b": name}, vals=dal.values(d=row["amount"]))


def movements(before: dict[str, Any] | None, after: dict[str, Any], now: dt.datetime) -> list[dict[str, Any]]:
    """The ledger's actions for a payment's change from ``before`` to ``after`` (none when no money moved)."""
    table = dal.payments_table()
    actions: list[dict[str, Any]] = []
    old = before or {}
    for field, rising, falling in (("captured_amount", "payment", "payment_failure"),
                                   ("refunded_amount", "refund", "refund_failure")):
        delta = int(after.get(field) or 0) - int(old.get(field) or 0)
        if delta == 0:
            continue
        row = entry(after["merchant_id"], after["mode"], rising if delta > 0 else falling, abs(delta),
                    after["currency"], after["id"], now)
        actions += [dal.put_action(table, row), counter_action(table, row)]
    return actions


def balance(merchant_id: str, mode: str) -> dict[str, Any]:
    """``available`` and ``pending`` per currency, from the counter shards (at most ``SHARDS`` items)."""
    totals: dict[str, dict[str, int]] = {"available": {}, "pending": {}}
    for item in dal.query_partition(dal.payments_table(), balance_partition(merchant_id, mode), ""):
        for name, value in item.items():
            bucket, _, currency = name.partition("_")
            if bucket in totals and currency:
                totals[bucket][currency] = totals[bucket].get(currency, 0) + int(value)
    return {"object": "balance", "livemode": mode == "live",
            "available": [{"amount": v, "currency": c} for c, v in sorted(totals["available"].items())],
            "pending": [{"amount": v, "currency": c} for c, v in sorted(totals["pending"].items())]}


def history(merchant_id: str, mode: str) -> list[dict[str, Any]]:
    """Every balance transaction of a book, oldest first (tests and exports; the API pages instead)."""
    return dal.query_partition(dal.payments_table(), btx_partition(merchant_id, mode), "")
