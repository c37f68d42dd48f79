"""Payments: authorize, sale, capture, void, refund, read and list; and their transactions.

Every change is one DynamoDB transaction holding the conditional update of the payment,
the transaction row, and the event row (the outbox): all of them land, or none does.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tahsil.connectors.simulator import Simulator
from tahsil.kernel import clock
from tahsil.kernel.errors import (
    InvalidRequest,
    NotFound,
)
from tahsil.kernel.ids import looks_like, new_sortable_id
from tahsil.kernel.principal import Principal
from tahsil.payments import authentication, cards
from tahsil.payments.models import PaymentStatus
from tahsil.store import crypto, dal

AUTHORIZATION_TTL = dt.timedelta(days=7)


def authorization_ttl() -> dt.timedelta:
    """7 days (seed 002); the template parameter AuthorizationTtlSeconds changes it for a deployment."""
    seconds = os.environ.get("AUTHORIZATION_TTL_SECONDS")
    return dt.timedelta(seconds=int(seconds)) if seconds else AUTHORIZATION_TTL
VELOCITY_TTL = dt.timedelta(hours=2)
OPTIMISTIC_RETRIES = 12
# Test mode's connector: the seed's test cards (tahsil.payments.cards), answered inside the request
# (tahsil.payments.lifecycle runs it through the same phases as a processor, without the recovery point).
SIMULATOR = Simulator(cards.issuer_decision)


# ---------------------------------------------------------------- views


def effective_status(item: dict[str, Any], now: dt.datetime) -> str:
    """An authorization past its expires_at is expired, whether or not a timer has run."""
    if item["status"] == PaymentStatus.AUTHORIZED and item.get("expires_at") and clock.iso(now) >= item["expires_at"]:
        return PaymentStatus.EXPIRED
    return item["status"]


def view(item: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or clock.now()
    captured = item.get("captured_amount", 0)
    refunded = item.get("refunded_amount", 0)
    return {
        "id": item["id"],
        "object": "payment",
        "status": effective_status(item, now),
        "amount": item["amount"],
        "currency": item["currency"],
        "captured_amount": captured,
        "refunded_amount": refunded,
        "remaining_amount": captured - refunded,
        # What can still be captured (an authorization not yet captured) and refunded: remaining_amount is
        # seed 002's "left to refund", which reads 0 on an authorized payment.
        "amount_capturable": item["amount"] if effective_status(item, now) == PaymentStatus.AUTHORIZED else 0,
        "amount_refundable": captured - refunded,
        "card_brand": item["card_brand"],
        "card_last4": item["card_last4"],
        "card_exp_month": item["card_exp_month"],
        "card_exp_year": item["card_exp_year"],
        "auth_code": item.get("auth_code"),
        "response_code": item["response_code"],
        "response_message": item["response_message"],
        "fraud_score": item["fraud_score"],
        "fraud_decision": item["fraud_decision"],
        "transaction_id": item["transaction_id"],
        "description": item.get("description"),
        "customer": item.get("customer"),
        "metadata": item.get("metadata") or {},
        "livemode": item["mode"] == "live",
        "created_at": item["created_at"],
        "expires_at": item.get("expires_at"),
        "captured_at": item.get("captured_at"),
        "voided_at": item.get("voided_at"),
        "void_reason": item.get("void_reason"),
        "refunded_at": item.get("refunded_at"),
        "refund_reason": item.get("refund_reason"),
        **_processor_view(item),
        **_authentication_view(item),
    }


def _authentication_view(item: dict[str, Any]) -> dict[str, Any]:
    """3-D Secure: how the payment was authenticated, and where the shopper goes while it waits."""
    shown = {"three_d_secure": item.get("three_d_secure")}
    if item["status"] == PaymentStatus.REQUIRES_ACTION:
        shown["next_action"] = authentication.next_action(item)
    if item.get("decline_code") and not item.get("connector"):
        shown["decline_code"] = item["decline_code"]
    return shown


def _processor_view(item: dict[str, Any]) -> dict[str, Any]:
    """Payments handed to a remote processor (tahsil.payments.processing) say where they stand there."""
    if not item.get("connector"):
        return {}
    pending = item.get("pending_action")
    return {"processor_reference": item.get("processor_reference"),
            "pending_action": {k: pending[k] for k in ("type", "amount", "transaction_id")} if pending else None,
            "decline_code": item.get("decline_code"),
            "review": item.get("review")}


def transaction_view(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "object": "transaction",
        "payment_id": item["payment_id"],
        "type": item["type"],
        "status": item["status"],
        "amount": item["amount"],
        "currency": item["currency"],
        "card_brand": item["card_brand"],
        "card_last4": item["card_last4"],
        "auth_code": item.get("auth_code"),
        "response_code": item["response_code"],
        "response_message": item["response_message"],
        "reason": item.get("reason"),
        "livemode": item["mode"] == "live",
        "created_at": item["created_at"],
    }


# ---------------------------------------------------------------- rows


# Transactions live in one partition per merchant and mode, TXN#<merchant>#<mode>, under their own id
# as sort key. Their ids sort by time (``new_txn_id``), so the partition read backwards is the list,
# newest first, with no index copy to write; and a transaction is a GetItem whose key comes from the
# caller's principal and the id: another merchant's or mode's id is simply not there.
# Rows written before this layout (TXN#<id> / TXN, listed through by_owner) are still found and listed.


def new_txn_id(now: dt.datetime) -> str:
    """``txn_`` and 20 characters, the first 9 of them the time: transaction ids sort by creation."""
    return new_sortable_id("txn", now)


def txn_partition(owner: str) -> str:
    """The partition of one merchant's transactions in one mode (``owner`` is ``<merchant>#<mode>``)."""
    return f"TXN#{owner}"


def load_transaction(owner: str, txn_id: str) -> dict[str, Any] | None:
    """A transaction of this merchant and mode, or None; rows of the older layout are found by their own key."""
    table = dal.payments_table()
    item = dal.get(table, txn_partition(owner), txn_id)
    if item is None:  # written before transactions moved into their merchant's partition
        legacy = dal.get(table, f"TXN#{txn_id}", "TXN")
        if legacy is not None and legacy.get("id") == txn_id and f"{legacy['merchant_id']}#{legacy['mode']}" == owner:
            item = legacy
    return item


def transaction_row(payment: dict[str, Any], *, txn_id: str, type_: str, status: str, amount: int,
                    now: dt.datetime, response_code: str = "00", response_message: str = "Approved",
                    auth_code: str | None = None, reason: str | None = None) -> dict[str, Any]:
    owner = f"{payment['merchant_id']}#{payment['mode']}"
    return {
        "pk": txn_partition(owner), "sk": txn_id, **_status_index(owner, txn_id, status),
        "id": txn_id, "merchant_id": payment["merchant_id"], "mode": payment["mode"], "payment_id": payment["id"],
        "type": type_, "status": status, "amount": amount, "currency": payment["currency"],
        "card_brand": payment["card_brand"], "card_last4": payment["card_last4"],
        "auth_code": auth_code, "response_code": response_code, "response_message": response_message,
        "reason": reason, "created_at": clock.iso(now),
    }


def _transaction_row(p: Principal, payment: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """``transaction_row`` for callers that name the principal (the payment says whose it is)."""
    return transaction_row(payment, **kwargs)


# Transaction totals per merchant, mode and status, kept exact by the write that adds the row:
# CNT#<merchant>#<mode>#TXN / <shard> holds ``all``, one number per status and, as ``ix_<status>``, how many of
# them carry the status index key. Shards (by transaction id) keep concurrent transactions of one merchant from
# conflicting on one item.
TXN_COUNTER_SHARDS = 8


def txn_status_partition(owner: str, status: str) -> str:
    """The by_owner key under which a merchant's transactions of one status are listed, newest first."""
    return f"{owner}#TXS#{status}"


def _status_index(owner: str, txn_id: str, status: str) -> dict[str, str]:
    # A transaction row sits in by_owner under its status (a sparse key moved with the status, in the same
    # write): a status-filtered listing reads only the rows it returns, however long the history.
    return {"gsi1pk": txn_status_partition(owner, status), "gsi1sk": txn_id}


def _counter_pk(p: Principal) -> str:
    return f"CNT#{p.owner}#TXN"


def transaction_actions(table: str, p: Principal, txn: dict[str, Any]) -> list[dict[str, Any]]:
    """Put a transaction row and count it, in the caller's DynamoDB transaction."""
    shard = zlib.crc32(txn["id"].encode()) % TXN_COUNTER_SHARDS
    indexed = txn.get("gsi1pk") == txn_status_partition(p.owner, txn["status"])
    return [dal.put_action(table, txn),
            dal.update_action(table, _counter_pk(p), f"S{shard:02d}",
                              "ADD #all :one, #status :one" + (", #ix :one" if indexed else ""), condition=None,
                              names={"#all": "all", "#status": txn["status"]} | ({"#ix": f"ix_{txn['status']}"}
                                                                                if indexed else {}),
                              vals=dal.values(one=1))]


def transaction_move_actions(table: str, row: dict[str, Any], status: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """Change a transaction row's status (and fields) conditionally on the status read, moving its count and its
    status index key (rows of the older layout keep theirs: they are listed through their own key)."""
    owner = f"{row['merchant_id']}#{row['mode']}"
    current = row["sk"] != "TXN"
    sets = {**fields, "status": status} | (_status_index(owner, row["id"], status) if current else {})
    expression = "SET " + ", ".join(f"#f_{k} = :f_{k}" for k in sets)
    actions = [dal.update_action(table, row["pk"], row["sk"], expression, condition="#f_status = :was",
                                 names={f"#f_{k}": k for k in sets},
                                 vals=dal.values(**{f"f_{k}": v for k, v in sets.items()}, was=row["status"]))]
    if row["status"] != status and current:  # rows of the older layout were never counted here
        shard = zlib.crc32(row["id"].encode()) % TXN_COUNTER_SHARDS
        was_indexed = row.get("gsi1pk") == txn_status_partition(owner, row["status"])
        adds = "ADD #old :less, #new :one, #ixnew :one" + (", #ixold :less" if was_indexed else "")
        names = {"#old": row["status"], "#new": status, "#ixnew": f"ix_{status}"}
        actions.append(dal.update_action(table, f"CNT#{owner}#TXN", f"S{shard:02d}", adds, condition=None,
                                         names=names | ({"#ixold": f"ix_{row['status']}"} if was_indexed else {}),
                                         vals=dal.values(one=1, less=-1)))
    return actions


def transaction_counts(p: Principal) -> dict[str, int]:
    """This merchant's and mode's transaction counts (``all``, per status, ``ix_<status>``): one query of the shards."""
    counts: dict[str, int] = {}
    for row in dal.query_partition(dal.payments_table(), _counter_pk(p), "S"):
        for name, value in row.items():
            if name not in ("pk", "sk") and not isinstance(value, str | bool):
                counts[name] = counts.get(name, 0) + int(value)
    return counts


def transaction_total(p: Principal, status: str | None = None) -> int:
    """How many transactions this merchant and mode have (of one status): one query of the shards, whatever the history."""
    return transaction_counts(p).get(status or "all", 0)


# ---------------------------------------------------------------- velocity


def count_attempt(p: Principal, fingerprint: str, now: dt.datetime) -> int:
    """Count one more attempt on this card this hour and return the count, this attempt included.

    Per merchant, mode and card (VEL#<merchant>#<mode>#<fingerprint> / <hour>): test traffic never moves
    a live score, nor one shop another's. One atomic ADD, before the payment is written and outside its
    transaction (1 WRU, not 2): concurrent attempts each get their own number, as before. A payment
    that then fails to land (a crash, a conflict, a payment intent that changed) leaves its attempt
    counted: an over-count, which only makes the velocity rule stricter; a payment can never land uncounted.
    """
    counted = dal.update(dal.payments_table(), f"VEL#{p.owner}#{fingerprint}", now.strftime("%Y%m%d%H"),
                         "ADD n :one SET #ttl = :ttl", names={"#ttl": "ttl"},
                         vals=dal.values(one=1, ttl=int((now + VELOCITY_TTL).timestamp())), returning="UPDATED_NEW")
    return int(counted["n"])


def _uncount_attempt(owner: str, fingerprint: str, hour: str) -> None:
    try:
        dal.update(dal.payments_table(), f"VEL#{owner}#{fingerprint}", hour, "ADD n :less",
                   condition="attribute_exists(n)", vals=dal.values(less=-1))
    except dal.ConditionFailed:
        pass  # expired meanwhile: nothing left to give back


_early_pool: ThreadPoolExecutor | None = None


class EarlyCount:
    """An authorize's or sale's attempt, counted in a worker thread from the moment the request is
    authenticated, while it takes its idempotency lock: the count adds no DynamoDB round trip in sequence.

    ``take`` hands the count to the payment (``create(counted=...)``). A request that never gets that
    far (a replay, an idempotency 409, a 429, a refusal before the payment) gives its count back in
    ``settle``: only payments keep their attempt counted, as when the count rode in their transaction.
    Between the two, a concurrent attempt may see one too many: an over-count, never an under-count.
    """

    def __init__(self, p: Principal, pan: str) -> None:
        global _early_pool
        if _early_pool is None:
            _early_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="velocity")
        self.owner = p.owner
        self.now = clock.now()
        self._taken = False
        self._fingerprint: Future[str] = _early_pool.submit(crypto.card_fingerprint, pan)
        self._count: Future[int] = _early_pool.submit(self._add, p)

    def _add(self, p: Principal) -> int:
        return count_attempt(p, self._fingerprint.result(), self.now)

    def take(self, p: Principal) -> int | None:
        """The count, for a payment of the same merchant and mode (None otherwise: the caller counts itself)."""
        if p.owner != self.owner:
            return None
        self._taken = True
        return self._count.result()

    def release(self) -> None:
        """The count was taken by a payment that turned out to exist already: ``settle`` gives it back."""
        self._taken = False

    def settle(self) -> None:
        """After the request: give the count back if no payment took it."""
        if self._taken:
            return
        try:
            self._count.result()
        except Exception:  # noqa: BLE001 - never counted: nothing to give back
            return
        _uncount_attempt(self.owner, self._fingerprint.result(), self.now.strftime("%Y%m%d%H"))


# ---------------------------------------------------------------- reads


def _owned(p: Principal, item: dict[str, Any] | None) -> bool:
    return item is not None and item["merchant_id"] == p.merchant_id and item["mode"] == p.mode


def load_payment(p: Principal, payment_id: str) -> dict[str, Any]:
    """The payment, if it belongs to this merchant and mode; otherwise a 404 that says nothing more."""
    if not looks_like("pay", payment_id):
        raise InvalidRequest("id must be a payment id (pay_...)", param="id")
    item = dal.get(dal.payments_table(), f"PAY#{payment_id}", "PAY")
    if not _owned(p, item):
        raise NotFound("payment not found", param="id")
    assert item is not None
    return item


def get(p: Principal, payment_id: str) -> dict[str, Any]:
    return view(load_payment(p, payment_id))


_STATUS_FILTERS: dict[str, tuple[str, dict[str, Any]]] = {
    # An authorization past its expiry is reported expired even before the timer flips it.
    PaymentStatus.AUTHORIZED: ("#s = :authorized AND expires_at > :now", {}),
    PaymentStatus.EXPIRED: ("#s = :expired OR (#s = :authorized AND expires_at <= :now)", {}),
}


def list_payments(p: Principal, *, limit: int, starting_after: str | None, status: str | None,
                  currency: str | None, created_gte: dt.datetime | None, created_lte: dt.datetime | None) -> dict[str, Any]:
    currency = currency.upper() if currency else None  # ISO 4217 codes are stored upper-case
    now = clock.now()
    table = dal.payments_table()
    start = None
    if starting_after:
        try:
            anchor = load_payment(p, starting_after)
        except (InvalidRequest, NotFound):
            raise InvalidRequest("starting_after must be the id of one of your payments", param="starting_after") from None
        start = dal.resume_after(anchor)
    clauses: list[str] = []
    names: dict[str, str] = {}
    vals: dict[str, Any] = {}
    if status:
        names["#s"] = "status"
        if status in _STATUS_FILTERS:
            clauses.append(f"({_STATUS_FILTERS[status][0]})")
            vals.update(dal.values(authorized="authorized", expired="expired", now=clock.iso(now)))
        else:
            clauses.append("#s = :status")
            vals.update(dal.values(status=status))
    if currency:
        clauses.append("currency = :currency")
        vals.update(dal.values(currency=currency))
    items = dal.query_owner(
        table, f"{p.owner}#PAY", start=start,
        sk_from=clock.sortable(created_gte) if created_gte else None,
        sk_to=clock.sortable(created_lte + dt.timedelta(seconds=1)) if created_lte else None,
        filter_expression=" AND ".join(clauses) or None, names=names or None, vals=vals or None,
        page_size=min(100, limit + 1) if not clauses else 100,
    )
    rows, has_more = dal.take(items, limit)
    page = [view(item, now) for item in rows]
    return {"object": "list", "payments": page, "has_more": has_more, "limit": limit,
            "next_starting_after": page[-1]["id"] if has_more else None}


def get_transaction(p: Principal, txn_id: str) -> dict[str, Any]:
    if not looks_like("txn", txn_id):
        raise InvalidRequest("id must be a transaction id (txn_...)", param="id")
    item = load_transaction(p.owner, txn_id)
    if item is None:
        raise NotFound("transaction not found", param="id")
    return transaction_view(item)


def _partition_rows(p: Principal, *, after: str | None, flt: str | None, names: dict[str, str] | None,
                    vals: dict[str, Any] | None, page_size: int) -> Iterator[dict[str, Any]]:
    """This merchant's and mode's transactions, newest first, after the id ``after``, page by page."""
    start = after
    while True:
        rows, start = dal.query_page(dal.payments_table(), txn_partition(p.owner), start_sk=start,
                                     filter_expression=flt, names=names, vals=vals, page_size=page_size)
        yield from rows
        if start is None:
            return


MAX_OFFSET = 1000


def _status_page(p: Principal, status: str, anchor: dict[str, Any] | None, wanted: int) -> list[dict[str, Any]]:
    """Up to ``wanted`` transactions of one status, newest first, older than ``anchor``: one index query a page."""
    # ``sk_to`` is inclusive: the anchor itself may come back (when it has this status), and is skipped.
    rows = dal.query_owner(dal.payments_table(), txn_status_partition(p.owner, status),
                           sk_to=anchor["id"] if anchor else None, page_size=min(wanted + (anchor is not None), 1000))
    return list(itertools.islice((row for row in rows if anchor is None or row["id"] != anchor["id"]), wanted))


def _scan_page(p: Principal, status: str | None, anchor: dict[str, Any] | None, legacy_anchor: bool, total: int,
               wanted: int) -> list[dict[str, Any]]:
    """Up to ``wanted`` transactions, newest first, after ``anchor``, read from the merchant's partition (and the
    older layout's rows); a status, when given, filters what is read (rows that predate the status key)."""
    table = dal.payments_table()
    flt, names, vals = (None, None, None)
    if status:
        flt, names, vals = "#s = :status", {"#s": "status"}, dal.values(status=status)
    page_size = min(wanted, 1000) if not flt else min(max(wanted, 100), 1000)
    # The partition first; then rows of the older layout (all older than any in the partition), through the
    # index: read only when the partition ran out before the page was full and did not hold all ``total``.
    seen = 0

    def newer() -> Iterator[dict[str, Any]]:
        nonlocal seen
        if legacy_anchor:
            return
        for row in _partition_rows(p, after=anchor["id"] if anchor else None, flt=flt, names=names, vals=vals,
                                   page_size=page_size):
            seen += 1
            yield row

    def older() -> Iterator[dict[str, Any]]:
        if anchor is None and seen >= total:
            return  # every counted transaction is in the partition (always so on a deployment that began with it)
        yield from dal.query_owner(table, f"{p.owner}#TXN", start=dal.resume_after(anchor) if legacy_anchor else None,
                                   filter_expression=flt, names=names, vals=vals, page_size=page_size)

    items, _ = dal.take(itertools.chain(newer(), older()), wanted)
    return items


def list_transactions(p: Principal, *, status: str | None, limit: int, offset: int,
                      starting_after: str | None = None) -> dict[str, Any]:
    """Newest first, ``offset`` items in (at most MAX_OFFSET), optionally after the transaction ``starting_after``.

    ``total`` comes from the counters, so neither it nor a page costs more as history grows; with a ``status``,
    the page comes from the status key (by_owner ``<merchant>#<mode>#TXS#<status>``), so a status that matches few
    rows reads no more than the page.
    """
    if offset > MAX_OFFSET:
        raise InvalidRequest(f"offset must be at most {MAX_OFFSET}; to page further, pass starting_after "
                             "(next_starting_after of the previous page)", param="offset")
    anchor = None
    if starting_after:
        anchor = load_transaction(p.owner, starting_after) if looks_like("txn", starting_after) else None
        if anchor is None:
            raise InvalidRequest("starting_after must be the id of one of your transactions", param="starting_after")
    legacy_anchor = anchor is not None and anchor["sk"] == "TXN"
    counts = transaction_counts(p)
    total = counts.get(status or "all", 0)
    items: list[dict[str, Any]] = []
    wanted = offset + limit + 1
    if status and counts.get(f"ix_{status}", 0) == total and not legacy_anchor:
        # Every transaction of this status carries the status key: read the page from it, O(page).
        if anchor is not None or offset < total:
            items = _status_page(p, status, anchor, wanted)
    elif anchor is not None or offset < total:
        items = _scan_page(p, status, anchor, legacy_anchor, total, wanted)
    rows = [transaction_view(item) for item in items[offset:offset + limit]]
    has_more = len(items) > offset + limit
    return {"transactions": rows, "total": total, "limit": limit, "offset": offset, "has_more": has_more,
            "next_starting_after": rows[-1]["id"] if has_more else None}
