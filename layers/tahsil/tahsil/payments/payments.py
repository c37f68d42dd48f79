"""Payments: authorize, sale, capture, void, refund, read and list; and their transactions.

Every change is one DynamoDB transaction holding the conditional update of the payment,
the transaction row, and the event row (the outbox): all of them land, or none does.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tahsil.connectors.base import CardData, Connector, Operation
from tahsil.connectors.simulator import Simulator
from tahsil.kernel import clock
from tahsil.kernel.errors import (
    AmountTooHigh,
    AuthorizationExpired,
    ConcurrentUpdate,
    Conflict,
    InvalidRequest,
    NotFound,
    PaymentDeclined,
)
from tahsil.kernel.errors import LiveConnectorNotConfigured as ConnectorMissing
from tahsil.kernel.events import RequestContext, event_row, owner_keys
from tahsil.kernel.ids import looks_like, new_id, new_sortable_id
from tahsil.kernel.money import max_amount
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import metrics
from tahsil.payments import cards, fraud
from tahsil.payments.models import TRANSITIONS, CaptureRequest, PaymentCreate, PaymentStatus, RefundRequest, VoidRequest
from tahsil.store import crypto, dal

AUTHORIZATION_TTL = dt.timedelta(days=7)


def authorization_ttl() -> dt.timedelta:
    """7 days (seed 002); the template parameter AuthorizationTtlSeconds changes it for a deployment."""
    seconds = os.environ.get("AUTHORIZATION_TTL_SECONDS")
    return dt.timedelta(seconds=int(seconds)) if seconds else AUTHORIZATION_TTL
VELOCITY_TTL = dt.timedelta(hours=2)
OPTIMISTIC_RETRIES = 12
# Test mode's connector: the seed's test cards (tahsil.payments.cards), answered inside the payment's transaction.
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
    }


def _processor_view(item: dict[str, Any]) -> dict[str, Any]:
    """Payments handed to a remote processor (tahsil.payments.processing) say where they stand there."""
    if not item.get("connector"):
        return {}
    pending = item.get("pending_action")
    return {"processor_reference": item.get("processor_reference"),
            "pending_action": {k: pending[k] for k in ("type", "amount", "transaction_id")} if pending else None}


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


def _transaction_row(p: Principal, payment: dict[str, Any], *, txn_id: str, type_: str, status: str, amount: int,
                     now: dt.datetime, response_code: str = "00", response_message: str = "Approved",
                     auth_code: str | None = None, reason: str | None = None) -> dict[str, Any]:
    return {
        "pk": txn_partition(p.owner), "sk": txn_id,
        "id": txn_id, "merchant_id": p.merchant_id, "mode": p.mode, "payment_id": payment["id"],
        "type": type_, "status": status, "amount": amount, "currency": payment["currency"],
        "card_brand": payment["card_brand"], "card_last4": payment["card_last4"],
        "auth_code": auth_code, "response_code": response_code, "response_message": response_message,
        "reason": reason, "created_at": clock.iso(now),
    }



# Transaction totals per merchant, mode and status, kept exact by the write that adds the row:
# CNT#<merchant>#<mode>#TXN / <shard> holds ``all`` and one number per status. Shards (by
# transaction id) keep concurrent transactions of one merchant from conflicting on one item.
TXN_COUNTER_SHARDS = 8


def _counter_pk(p: Principal) -> str:
    return f"CNT#{p.owner}#TXN"


def transaction_actions(table: str, p: Principal, txn: dict[str, Any]) -> list[dict[str, Any]]:
    """Put a transaction row and count it, in the caller's DynamoDB transaction."""
    shard = zlib.crc32(txn["id"].encode()) % TXN_COUNTER_SHARDS
    return [dal.put_action(table, txn),
            dal.update_action(table, _counter_pk(p), f"S{shard:02d}", "ADD #all :one, #status :one", condition=None,
                              names={"#all": "all", "#status": txn["status"]}, vals=dal.values(one=1))]


def transaction_total(p: Principal, status: str | None = None) -> int:
    """How many transactions this merchant and mode have (of one status): one query of the shards, whatever the history."""
    shards = dal.query_partition(dal.payments_table(), _counter_pk(p), "S")
    return sum(int(row.get(status or "all", 0)) for row in shards)


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


# ---------------------------------------------------------------- create

# extra_actions(payment item, status) -> more TransactWriteItems actions for the same transaction.
ExtraActions = Callable[[dict[str, Any], str], list[dict[str, Any]]]


class ExtraActionFailed(ConcurrentUpdate):
    """A condition of one of the caller's extra actions failed, so nothing was written (no payment either)."""

    def __init__(self, index: int) -> None:
        super().__init__("the object this payment belongs to changed; retry")
        self.index = index  # which of the extra actions


class PaymentExists(Exception):
    """A remote payment with this id is already written: the same Idempotency-Key again (processing resumes it)."""

    def __init__(self, payment_id: str) -> None:
        super().__init__(payment_id)
        self.payment_id = payment_id


def create(p: Principal, req: PaymentCreate, *, capture: bool, ctx: RequestContext,
           extra_actions: ExtraActions | None = None, connector: Connector = SIMULATOR,
           payment_id: str | None = None, early: EarlyCount | None = None) -> dict[str, Any]:
    """Authorize (capture=False) or sale (capture=True). A decline is stored, then raised as 402.

    ``early``: this attempt's velocity count, already started by the handler (``EarlyCount``).

    ``extra_actions`` lets the caller change its own object in the payment's transaction (a payment
    intent: succeeded, or one more failed attempt), so that both land or neither does. When one of
    their conditions fails, nothing is written and ``ExtraActionFailed`` says which.

    With a remote ``connector`` (live mode, chosen by tahsil.payments.processing) this is the first
    phase only: the payment is written ``processing`` (the recovery point; its attempt was counted
    just before, by ``count_attempt``) unless the fraud rules decline it, and returned; processing
    calls the processor and commits.
    """
    if req.amount > max_amount(req.currency):
        raise InvalidRequest(f"amount must be at most {max_amount(req.currency)} for {req.currency}", param="amount")
    if p.livemode and not connector.remote:
        raise ConnectorMissing("live payments need a processor connector; the simulator never takes them")
    now = clock.now()
    payment_id, txn_id = payment_id or new_id("pay"), new_txn_id(now)
    pan = req.card.pan
    kind = "sale" if capture else "authorize"
    answer = None if connector.remote else connector.execute(Operation(
        kind, payment_id, req.amount, req.currency, payment_id,
        card=CardData(pan, req.card.exp_month, req.card.exp_year, req.card.cvv.get_secret_value(), req.card.cardholder_name)),
        timeout=0)
    fingerprint = crypto.card_fingerprint(pan)
    # Binary, not base64 text: the payment item stays under 1 KB (one write unit, and one for its index copy).
    sealed = crypto.vault.seal(pan, context=f"{p.merchant_id}/{payment_id}", merchant=p.merchant_id)
    table = dal.payments_table()
    taken = early.take(p) if early is not None else None
    count = taken if taken is not None else count_attempt(p, fingerprint, now)

    def exists() -> PaymentExists:
        """The same request again (a remote payment's id derives from its Idempotency-Key): it was counted then."""
        if early is not None and taken is not None:
            early.release()
        else:
            _uncount_attempt(p.owner, fingerprint, now.strftime("%Y%m%d%H"))
        return PaymentExists(payment_id)

    risk = fraud.score(amount=req.amount, currency=req.currency, velocity=count,
                       risky_card=answer.risk_flag if answer else False, test_card=cards.test_card_rule(pan, p.mode))

    if answer is not None and answer.status != "approved":
        status, code, message, auth_code = PaymentStatus.FAILED, answer.code, answer.message, None
    elif risk.decision == "decline":
        status, code, message, auth_code = PaymentStatus.FAILED, "59", "Suspected fraud", None
    elif answer is None:  # a remote processor decides, after this phase
        status, code, message, auth_code = PaymentStatus.PROCESSING, "", "Processing", None
    else:
        status = PaymentStatus.CAPTURED if capture else PaymentStatus.AUTHORIZED
        code, message, auth_code = answer.code, answer.message, answer.auth_code

    payment = {
        "pk": f"PAY#{payment_id}", "sk": "PAY", **owner_keys(p, "PAY", now, payment_id),
        "id": payment_id, "merchant_id": p.merchant_id, "mode": p.mode, "version": 1,
        "status": status, "amount": req.amount, "currency": req.currency,
        "captured_amount": req.amount if status == PaymentStatus.CAPTURED else 0, "refunded_amount": 0,
        "card_brand": cards.detect_brand(pan), "card_last4": pan[-4:],
        "card_exp_month": req.card.exp_month, "card_exp_year": req.card.exp_year,
        "card_fingerprint": bytes.fromhex(fingerprint), "card_sealed": sealed,
        "cardholder_name": req.card.cardholder_name,
        "auth_code": auth_code, "response_code": code, "response_message": message,
        "fraud_score": risk.score, "fraud_decision": risk.decision, "fraud_reasons": list(risk.reasons) or None,
        "transaction_id": txn_id,
        "description": req.description,
        "customer": req.customer.model_dump(exclude_none=True) if req.customer else None,
        "metadata": req.metadata or None,
        "created_at": clock.iso(now),
        "expires_at": clock.iso(now + authorization_ttl()) if status == PaymentStatus.AUTHORIZED else None,
        "captured_at": clock.iso(now) if status == PaymentStatus.CAPTURED else None,
    }
    if connector.remote:
        payment |= {"connector": connector.name, "api_version": p.api_version,
                    "attempt": {"kind": kind, "reference": payment_id, "started_at": clock.iso(now)}}
    if status == PaymentStatus.PROCESSING:
        # The recovery point: no transaction row and no event yet; both come with the processor's answer.
        try:
            dal.put(table, payment, condition="attribute_not_exists(pk)")
        except dal.ConditionFailed as exc:
            raise exists() from exc
        return payment
    txn_type = "decline" if status == PaymentStatus.FAILED else ("sale" if capture else "authorization")
    txn = _transaction_row(p, payment, txn_id=txn_id, type_=txn_type, status=status, amount=req.amount, now=now,
                           response_code=code, response_message=message, auth_code=auth_code)
    event = event_row(p, ctx, type_=f"payment.{status}", obj=view(payment, now), sequence=1, previous={}, now=now)
    actions = [dal.put_action(table, payment), dal.put_action(table, event), *transaction_actions(table, p, txn)]
    base = len(actions)
    if extra_actions:
        actions += extra_actions(payment, status)
    for _ in range(OPTIMISTIC_RETRIES):
        try:
            dal.transact(actions)
        except dal.ConditionFailed as exc:
            if exc.index is not None and exc.index >= base:
                raise ExtraActionFailed(exc.index - base) from exc
            if exc.index == 0 and connector.remote:
                raise exists() from exc
            if exc.index is None:  # a conflicting transaction (a counter shard, the caller's object): again
                continue
            raise
        break
    else:
        raise ConcurrentUpdate("too many concurrent payments for this account; retry")

    result = view(payment, now)
    metrics.add_metric(name=f"Payment_{status}", unit="Count", value=1)  # the dashboard's payments by outcome
    if status == PaymentStatus.FAILED:
        metrics.add_metric(name=f"PaymentDeclined_{code}", unit="Count", value=1)  # declines by code
        if code == "59":
            text = f"payment declined: high fraud risk (score: {risk.score})"
        else:
            text = f"card declined: {message.lower()} (code: {code})"
        raise PaymentDeclined(text, payment_id=payment_id, transaction_id=txn_id, decline_code=code,
                              fraud_score=risk.score)
    return result


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


def list_transactions(p: Principal, *, status: str | None, limit: int, offset: int,
                      starting_after: str | None = None) -> dict[str, Any]:
    """Newest first, ``offset`` items in (at most MAX_OFFSET), optionally after the transaction ``starting_after``.

    ``total`` comes from the counters, so neither it nor a page costs more as history grows.
    """
    if offset > MAX_OFFSET:
        raise InvalidRequest(f"offset must be at most {MAX_OFFSET}; to page further, pass starting_after "
                             "(next_starting_after of the previous page)", param="offset")
    table = dal.payments_table()
    anchor = None
    if starting_after:
        anchor = load_transaction(p.owner, starting_after) if looks_like("txn", starting_after) else None
        if anchor is None:
            raise InvalidRequest("starting_after must be the id of one of your transactions", param="starting_after")
    legacy_anchor = anchor is not None and anchor["sk"] == "TXN"
    total = transaction_total(p, status)
    flt, names, vals = (None, None, None)
    if status:
        flt, names, vals = "#s = :status", {"#s": "status"}, dal.values(status=status)
    items: list[dict[str, Any]] = []
    if anchor is not None or offset < total:
        wanted = offset + limit + 1
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
    rows = [transaction_view(item) for item in items[offset:offset + limit]]
    has_more = len(items) > offset + limit
    return {"transactions": rows, "total": total, "limit": limit, "offset": offset, "has_more": has_more,
            "next_starting_after": rows[-1]["id"] if has_more else None}


# ---------------------------------------------------------------- changes

_REFUSALS: dict[tuple[str, str], str] = {
    ("capture", "captured"): "payment already captured",
    ("capture", "partially_refunded"): "payment already captured",
    ("capture", "refunded"): "payment already captured",
    ("capture", "voided"): "cannot capture a voided payment",
    ("void", "captured"): "cannot void captured payment (use refund instead)",
    ("void", "partially_refunded"): "cannot void captured payment (use refund instead)",
    ("void", "refunded"): "cannot void captured payment (use refund instead)",
    ("void", "voided"): "payment already voided",
    ("refund", "authorized"): "can only refund captured payments",
    ("refund", "voided"): "can only refund captured payments",
    ("refund", "refunded"): "payment already fully refunded",
}


def _require(item: dict[str, Any], action: str, now: dt.datetime) -> None:
    status = effective_status(item, now)
    if status in TRANSITIONS[action]:
        return
    if status == PaymentStatus.EXPIRED:
        raise AuthorizationExpired("authorization expired (valid for 7 days)")
    if status == PaymentStatus.FAILED:
        raise Conflict(f"payment failed; there is nothing to {action}", status=status)
    raise Conflict(_REFUSALS.get((action, status), f"cannot {action} a payment that is {status}"), status=status)


def _apply(p: Principal, ctx: RequestContext, payment_id: str, action: str, change: Any) -> dict[str, Any]:
    """Read, check, and write the change conditionally on the version read; retry on a lost race.

    ``change(item, now)`` checks amounts and returns (new fields, transaction row kwargs, event type).
    """
    table = dal.payments_table()
    for _ in range(OPTIMISTIC_RETRIES):
        item = load_payment(p, payment_id)
        if item.get("connector"):  # a processor's payment changes through tahsil.payments.processing only
            raise Conflict(f"this payment is handled by the {item['connector']} connector", status=item["status"])
        now = clock.now()
        _require(item, action, now)
        fields, txn_kwargs, event_type = change(item, now)
        version = item["version"]
        updated = {**item, **fields, "version": version + 1, "transaction_id": new_txn_id(now)}
        before = view(item, now)
        previous = {k: before[k] for k in fields if k in before}
        names = {f"#{k}": k for k in fields} | {"#version": "version", "#txn": "transaction_id", "#status": "status"}
        sets = ", ".join(f"#{k} = :{k}" for k in fields)
        vals = dal.values(**fields, next=version + 1, seen=version, txn=updated["transaction_id"])
        condition = "#version = :seen"
        if action in ("capture", "void"):
            condition += " AND #status = :from AND expires_at > :now"
            vals |= dal.values(**{"from": "authorized", "now": clock.iso(now)})
        txn = _transaction_row(p, updated, txn_id=updated["transaction_id"], now=now, **txn_kwargs)
        actions = [
            dal.update_action(table, item["pk"], item["sk"], f"SET {sets}, #version = :next, #txn = :txn",
                              condition=condition, names=names, vals=vals),
            dal.put_action(table, event_row(p, ctx, type_=event_type, obj=view(updated, now), sequence=version + 1,
                                            previous=previous, now=now)),
            *transaction_actions(table, p, txn),
        ]
        try:
            dal.transact(actions)
        except dal.ConditionFailed:
            continue  # someone else changed it first: read again, and re-check against what they did
        return view(updated, now)
    raise ConcurrentUpdate("the payment is being changed by other requests; retry")


def capture(p: Principal, payment_id: str, req: CaptureRequest, ctx: RequestContext) -> dict[str, Any]:
    def change(item: dict[str, Any], now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any], str]:
        amount = req.amount if req.amount is not None else item["amount"]
        if amount > item["amount"]:
            raise AmountTooHigh("capture amount exceeds authorized amount", param="amount",
                                authorized_amount=item["amount"])
        fields = {"status": "captured", "captured_amount": amount, "captured_at": clock.iso(now)}
        return fields, {"type_": "capture", "status": "captured", "amount": amount,
                        "auth_code": item.get("auth_code")}, "payment.captured"

    return _apply(p, ctx, payment_id, "capture", change)


def void(p: Principal, payment_id: str, req: VoidRequest, ctx: RequestContext) -> dict[str, Any]:
    def change(item: dict[str, Any], now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any], str]:
        fields = {"status": "voided", "voided_at": clock.iso(now), "void_reason": req.reason}
        return fields, {"type_": "void", "status": "voided", "amount": item["amount"], "reason": req.reason}, \
            "payment.voided"

    return _apply(p, ctx, payment_id, "void", change)


def refund(p: Principal, payment_id: str, req: RefundRequest, ctx: RequestContext) -> dict[str, Any]:
    def change(item: dict[str, Any], now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any], str]:
        available = item["captured_amount"] - item["refunded_amount"]
        amount = req.amount if req.amount is not None else available
        if amount > available:
            raise AmountTooHigh("refund amount exceeds available amount", param="amount", available_amount=available)
        total = item["refunded_amount"] + amount
        status = "refunded" if total == item["captured_amount"] else "partially_refunded"
        fields = {"status": status, "refunded_amount": total, "refunded_at": clock.iso(now), "refund_reason": req.reason}
        return fields, {"type_": "refund", "status": "refunded", "amount": amount, "reason": req.reason}, \
            "payment.refunded"

    return _apply(p, ctx, payment_id, "refund", change)
