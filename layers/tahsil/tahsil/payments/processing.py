"""Payments through a processor connector, crash-safe (the atomic-phases pattern).

Test mode always uses the simulator (``payments.SIMULATOR``): one DynamoDB transaction decides
and records, as before. Live mode never fakes: a seed test card is declined before anything is
written (402 ``TEST_CARD_IN_LIVE_MODE``), a merchant without a live connector is refused (403
``LIVE_CONNECTOR_NOT_CONFIGURED``), and a payment goes to its processor in three phases:

1. **Recovery point.** A delayed message for the recovery worker is queued, then the payment is
   written ``processing`` (its attempt counted just before; fraud declines stop here, unsent). A capture,
   void or refund writes ``<action>_pending`` with ``pending_action`` and a ``pending`` transaction.
2. **Call.** The processor gets Tahsil's id (``pay_...`` / ``txn_...``) as idempotency key and
   reference, within ``PROCESSOR_TIMEOUT_SECONDS`` (below the function's timeout).
3. **Commit.** The outcome lands conditionally on the phase-1 state, with its transaction row and
   event, in one transaction. A capture, void or refund the processor only acknowledged is
   recorded as acknowledged; its notification (``apply_notification``) settles it.

When the answer is lost (timeout, 5xx, crash), the merchant gets 202 with the payment
``processing`` and no idempotency record is kept: a retry with the same Idempotency-Key derives
the same payment id (``derived_id``), finds the recovery point and asks the processor by reference
(``Connector.lookup``), so it gets the eventual outcome and never a second charge. The recovery
worker (``recover``, SQS with a delay) does the same for requests nobody retries, and an Adyen
AUTHORISATION notification completes a ``processing`` payment too. Whichever comes first commits;
the others' conditional writes fail and they read the result.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tahsil.connectors.base import (
    SEED_CODES,
    CardData,
    Connector,
    ConnectorError,
    Operation,
    Outcome,
    OutcomeUnknown,
)
from tahsil.kernel import clock
from tahsil.kernel.errors import (
    AmountTooHigh,
    ConcurrentUpdate,
    Conflict,
    InvalidRequest,
    LiveConnectorNotConfigured,
    ModificationPending,
    PaymentDeclined,
    PaymentProcessing,
    ProcessorRefused,
    TestCardInLiveMode,
    Unauthenticated,
)
from tahsil.kernel.events import RequestContext, event_row
from tahsil.kernel.ids import new_id
from tahsil.kernel.principal import LATEST_API_VERSION, Principal
from tahsil.kernel.telemetry import logger
from tahsil.payments import cards, payments
from tahsil.payments.models import CaptureRequest, PaymentCreate, PaymentStatus, RefundRequest, VoidRequest
from tahsil.store import aws, crypto, dal

if TYPE_CHECKING:
    from types import ModuleType

    from tahsil.connectors.adyen import Notification


def _connectors() -> ModuleType:
    """The live connectors' settings (and the Adyen library under them), loaded on the first live request:
    a test-mode payment, and the authorize handler's cold start, never pay for their import."""
    from tahsil.connectors import settings

    return settings

OPTIMISTIC_RETRIES = 12
# Seed 002's test cards and Tahsil's documented velocity test cards: never sent to a processor, never
# accepted in live mode.
TEST_CARDS: frozenset[str] = frozenset({*cards.SEED_TEST_CARDS, *cards.VELOCITY_TEST_CARDS})
PENDING_STATUS = {"capture": PaymentStatus.CAPTURE_PENDING, "void": PaymentStatus.VOID_PENDING,
                  "refund": PaymentStatus.REFUND_PENDING}
SETTLE_EVENTS = {"CAPTURE": "capture", "CAPTURE_FAILED": "capture", "CANCELLATION": "void", "REFUND": "refund",
                 "REFUND_FAILED": "refund", "CANCEL_OR_REFUND": "void"}


def processor_timeout() -> float:
    """Seconds one processor call may take: 8 by default, well under the functions' 15 s timeout."""
    return float(os.environ.get("PROCESSOR_TIMEOUT_SECONDS", "8"))


def recovery_delay() -> int:
    return int(os.environ.get("RECOVERY_DELAY_SECONDS", "60"))


def before_commit(stage: str, reference: str) -> None:
    """Between the processor's answer and Tahsil's commit. Does nothing; the fault-injection tests crash here."""


# ---------------------------------------------------------------- which connector


def route(p: Principal, pan: str) -> Connector:
    """The connector for a new payment: the simulator in test mode; in live mode the merchant's, or a refusal."""
    if not p.livemode:
        return payments.SIMULATOR
    if pan in TEST_CARDS:
        shown = " ".join(pan[i:i + 4] for i in range(0, len(pan), 4))
        raise TestCardInLiveMode(f"card declined: {shown} is a test card; live mode takes real cards only",
                                 param="card.number", decline_code="test_card")
    row = _connectors().load(p.merchant_id, "live")
    if row is None:
        raise LiveConnectorNotConfigured(
            "no payment processor is configured for live payments on this account; your Tahsil operator sets one "
            "(tahsil merchants connector)")
    try:
        return _connectors().build(row)
    except (ConnectorError, KeyError, ValueError):
        logger.exception("live connector misconfigured", extra={"merchant_id": p.merchant_id})
        raise LiveConnectorNotConfigured("the live payment processor of this account is misconfigured; "
                                         "your Tahsil operator must set it again") from None


def connector_of(item: dict[str, Any]) -> Connector:
    row = _connectors().load(item["merchant_id"], item["mode"])
    if row is None or row.get("connector") != item["connector"]:
        raise LiveConnectorNotConfigured(f"the {item['connector']} connector this payment went through is no longer "
                                         "configured for this account")
    return _connectors().build(row)


def derived_id(prefix: str, p: Principal, ctx: RequestContext | None, *parts: str) -> str:
    """With an Idempotency-Key, the same request always names the same object (a retry finds it); else random."""
    if ctx is None or not ctx.idempotency_key:
        return new_id(prefix)
    digest = crypto.keyed_digest("tahsil/derived-id/v1", "\x1f".join([p.owner, ctx.idempotency_key, *parts]))
    number, chars = int.from_bytes(digest, "big"), []
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    while len(chars) < 20:
        number, rest = divmod(number, 62)
        chars.append(alphabet[rest])
    return f"{prefix}_{''.join(chars)}"


def system_principal(item: dict[str, Any]) -> Principal:
    """Who a worker or a notification acts as: the payment's own merchant and mode."""
    return Principal(merchant_id=item["merchant_id"], mode=item["mode"], key_id="", key_type="system",
                     api_version=item.get("api_version") or LATEST_API_VERSION)


def schedule_recovery(payment_id: str, reference: str) -> None:
    """Queued before the recovery point is written: a crash after it always leaves a worker to finish."""
    url = os.environ.get("RECOVERY_QUEUE_URL")
    if not url:
        logger.error("RECOVERY_QUEUE_URL is not set: no recovery worker will look at this payment",
                     extra={"payment_id": payment_id})
        return
    aws.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps({"payment_id": payment_id, "reference": reference}),
                                   DelaySeconds=min(900, recovery_delay()))


def _call(connector: Connector, op: Operation, *, replay: bool) -> Outcome | None:
    """The processor's answer, or None when it is not known (it may or may not have acted)."""
    try:
        return (connector.lookup if replay else connector.execute)(op, timeout=processor_timeout())
    except OutcomeUnknown as exc:
        logger.warning("processor outcome unknown", extra={"reference": op.reference, "why": str(exc)})
        return None
    except ConnectorError as exc:  # refused before processing (credentials): nothing happened there
        return Outcome("declined", "96", SEED_CODES["96"], None, str(exc))


# ---------------------------------------------------------------- authorize and sale


def count_early(principal: Principal | None, req: PaymentCreate) -> payments.EarlyCount | None:
    """Start counting the attempt (an authenticated request) while the request takes its idempotency lock."""
    return payments.EarlyCount(principal, req.card.pan) if principal is not None else None


def create_counted(p: Principal | None, req: PaymentCreate, *, capture: bool,
                   respond: Callable[[Callable[[Principal, RequestContext], Any]], Any]) -> Any:
    """A handler's authorize or sale: ``respond`` (tahsil.api.http's) runs ``create`` under the idempotency
    lock, with the attempt counted meanwhile (``count_early``); a count no payment took is given back."""
    early = count_early(p, req)
    try:
        return respond(lambda who, ctx: create(who, req, capture=capture, ctx=ctx, early=early))
    finally:
        if early is not None:
            early.settle()


def create(p: Principal, req: PaymentCreate, *, capture: bool, ctx: RequestContext,
           extra_actions: payments.ExtraActions | None = None, early: payments.EarlyCount | None = None) -> dict[str, Any]:
    """POST /v1/payments/authorize and /sale: the simulator in test mode, the merchant's processor in live mode.

    ``early``: the attempt's velocity count, started by the handler (see ``payments.EarlyCount``).
    """
    connector = route(p, req.card.pan)
    if not connector.remote:
        return payments.create(p, req, capture=capture, ctx=ctx, extra_actions=extra_actions, connector=connector,
                               early=early)
    if extra_actions:
        raise Conflict("payment intents cannot be confirmed through a processor connector yet; use the payments API")
    fingerprint = crypto.card_fingerprint(req.card.pan)
    payment_id = derived_id("pay", p, ctx, "create", str(capture), str(req.amount), req.currency, fingerprint)
    try:
        # The recovery message first: a crash after the recovery point always leaves a worker to finish it.
        schedule_recovery(payment_id, payment_id)
        payment = payments.create(p, req, capture=capture, ctx=ctx, connector=connector, payment_id=payment_id,
                                  early=early)
    except payments.PaymentExists:  # the same Idempotency-Key and request again: the payment it made
        return resume(p, payments.load_payment(p, payment_id))
    if payment["status"] != PaymentStatus.PROCESSING:
        return payment  # declined by the fraud rules before any call (payments.create raised for that already)
    card = CardData(req.card.pan, req.card.exp_month, req.card.exp_year, req.card.cvv.get_secret_value(),
                    req.card.cardholder_name)
    outcome = _call(connector, _create_op(payment, card), replay=False)
    if outcome is None or outcome.status == "pending":
        raise PaymentProcessing(payments.view(payment))
    before_commit("create", payment_id)
    return render(commit_create(payment_id, outcome, known=payment))


def _create_op(item: dict[str, Any], card: CardData) -> Operation:
    return Operation(item["attempt"]["kind"], item["id"], item["amount"], item["currency"], item["id"], card=card)


def _vaulted_card(item: dict[str, Any]) -> CardData:
    """The card for a replay: decrypted from the vault for this call only; the CVV was never kept."""
    pan = crypto.vault.unseal(item["card_sealed"], f"{item['merchant_id']}/{item['id']}", item["merchant_id"])
    return CardData(pan, item["card_exp_month"], item["card_exp_year"], None, item.get("cardholder_name"))


def render(item: dict[str, Any]) -> dict[str, Any]:
    """A settled payment as the authorize/sale answer: the payment, or the 402 its decline is."""
    if item["status"] == PaymentStatus.PROCESSING:
        raise PaymentProcessing(payments.view(item))
    if item["status"] == PaymentStatus.FAILED:
        code = item["response_code"]
        if code == "59" and item.get("fraud_decision") == "decline":
            text = f"payment declined: high fraud risk (score: {item['fraud_score']})"
        else:
            text = f"card declined: {item['response_message'].lower()} (code: {code})"
        raise PaymentDeclined(text, payment_id=item["id"], transaction_id=item["transaction_id"], decline_code=code,
                              fraud_score=item["fraud_score"])
    return payments.view(item)


def resume(p: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """The same request again: the stored outcome, or (still processing) ask the processor by reference."""
    if item["merchant_id"] != p.merchant_id or item["mode"] != p.mode:
        raise Conflict("idempotency key collision; use another Idempotency-Key")
    if item["status"] == PaymentStatus.PROCESSING:
        item = complete(item) or item
    return render(item)


def complete(item: dict[str, Any]) -> dict[str, Any] | None:
    """Ask the processor for a processing payment's outcome and commit it; None if still unknown."""
    outcome = _call(connector_of(item), _create_op(item, _vaulted_card(item)), replay=True)
    if outcome is None or outcome.status == "pending":
        return None
    before_commit("recover", item["id"])
    return commit_create(item["id"], outcome, known=item)


def commit_create(payment_id: str, outcome: Outcome, *, also: list[dict[str, Any]] | None = None,
                  known: dict[str, Any] | None = None) -> dict[str, Any]:
    """processing -> authorized | captured | failed with its transaction row and event, exactly once.

    ``also``: more actions for the same transaction (a notification's identity row). ``known``: the
    payment as this caller read or wrote it (saves a read; the condition on its version still holds).
    Returns the payment as stored after this call (or after whoever committed first).
    """
    table = dal.payments_table()
    for _ in range(OPTIMISTIC_RETRIES):
        item, known = known or dal.get(table, f"PAY#{payment_id}", "PAY"), None
        if item is None:
            raise LookupError(payment_id)
        if item["status"] != PaymentStatus.PROCESSING:
            if also:
                _record_only(also)
            return item
        now = clock.now()
        p = system_principal(item)
        sale = item["attempt"]["kind"] == "sale"
        if outcome.status == "approved":
            status = PaymentStatus.CAPTURED if sale else PaymentStatus.AUTHORIZED
        else:
            status = PaymentStatus.FAILED
        fields: dict[str, Any] = {
            "status": status, "response_code": outcome.code, "response_message": outcome.message,
            "auth_code": outcome.auth_code if status != PaymentStatus.FAILED else None,
            "processor_reference": outcome.processor_reference, "processor_reason": outcome.processor_reason,
            "captured_amount": item["amount"] if status == PaymentStatus.CAPTURED else 0,
            "captured_at": clock.iso(now) if status == PaymentStatus.CAPTURED else None,
            "expires_at": clock.iso(now + payments.authorization_ttl()) if status == PaymentStatus.AUTHORIZED else None,
        }
        updated = {**item, **fields, "version": item["version"] + 1}
        txn_type = "decline" if status == PaymentStatus.FAILED else ("sale" if sale else "authorization")
        txn = payments._transaction_row(p, updated, txn_id=item["transaction_id"], type_=txn_type, status=status,
                                        amount=item["amount"], now=now, response_code=outcome.code,
                                        response_message=outcome.message, auth_code=fields["auth_code"])
        txn["processor_reference"] = outcome.processor_reference
        before = payments.view(item, now)
        actions = [
            dal.update_action(table, item["pk"], item["sk"], _set(fields) + ", #version = :next",
                              condition="#status = :processing AND #version = :seen",
                              names=_names(fields) | {"#version": "version", "#status": "status"},
                              vals=dal.values(**fields, next=item["version"] + 1, seen=item["version"],
                                              processing=PaymentStatus.PROCESSING)),
            dal.put_action(table, txn),
            dal.put_action(table, event_row(p, None, type_=f"payment.{status}", obj=payments.view(updated, now),
                                            sequence=item["version"] + 1,
                                            previous={k: before[k] for k in ("status", "response_code") if k in before},
                                            now=now)),
        ]
        if outcome.processor_reference:
            actions.append(dal.put_action(table, _psp_row(item, outcome.processor_reference, item["transaction_id"])))
        base = len(actions)
        actions += also or []
        try:
            dal.transact(actions)
        except dal.ConditionFailed as exc:
            if exc.index is not None and exc.index >= base:
                return item  # the notification was applied before: nothing more to do
            continue
        return updated
    raise ConcurrentUpdate("the payment is being changed by other requests; retry with the same Idempotency-Key")


def _names(fields: dict[str, Any]) -> dict[str, str]:
    return {f"#{k}": k for k in fields}


def _set(fields: dict[str, Any]) -> str:
    return "SET " + ", ".join(f"#{k} = :{k}" for k in fields)


def _psp_row(item: dict[str, Any], psp: str, txn_id: str) -> dict[str, Any]:
    """processor reference -> Tahsil payment and transaction, for notifications that carry only the former."""
    return {"pk": f"PSP#{item['connector']}#{psp}", "sk": "PSP", "payment_id": item["id"], "transaction_id": txn_id,
            "merchant_id": item["merchant_id"], "mode": item["mode"]}


def _record_only(actions: list[dict[str, Any]]) -> None:
    try:
        dal.transact(actions)
    except dal.ConditionFailed:
        pass  # already recorded


# ---------------------------------------------------------------- capture, void, refund


def capture(p: Principal, payment_id: str, req: CaptureRequest, ctx: RequestContext) -> dict[str, Any]:
    if not p.livemode:
        return payments.capture(p, payment_id, req, ctx)
    item = payments.load_payment(p, payment_id)
    if not item.get("connector"):
        return payments.capture(p, payment_id, req, ctx)

    def amount(item: dict[str, Any]) -> int:
        value = req.amount if req.amount is not None else item["amount"]
        if value > item["amount"]:
            raise AmountTooHigh("capture amount exceeds authorized amount", param="amount", authorized_amount=item["amount"])
        return value

    return modify(p, payment_id, "capture", amount, None, ctx, requested=str(req.amount))


def void(p: Principal, payment_id: str, req: VoidRequest, ctx: RequestContext) -> dict[str, Any]:
    if not p.livemode:
        return payments.void(p, payment_id, req, ctx)
    item = payments.load_payment(p, payment_id)
    if not item.get("connector"):
        return payments.void(p, payment_id, req, ctx)
    return modify(p, payment_id, "void", lambda item: item["amount"], req.reason, ctx)


def refund(p: Principal, payment_id: str, req: RefundRequest, ctx: RequestContext) -> dict[str, Any]:
    if not p.livemode:
        return payments.refund(p, payment_id, req, ctx)
    item = payments.load_payment(p, payment_id)
    if not item.get("connector"):
        return payments.refund(p, payment_id, req, ctx)

    def amount(item: dict[str, Any]) -> int:
        available = item["captured_amount"] - item["refunded_amount"]
        value = req.amount if req.amount is not None else available
        if value > available:
            raise AmountTooHigh("refund amount exceeds available amount", param="amount", available_amount=available)
        return value

    return modify(p, payment_id, "refund", amount, req.reason, ctx, requested=str(req.amount))


def modify(p: Principal, payment_id: str, kind: str, amount_of: Callable[[dict[str, Any]], int], reason: str | None,
           ctx: RequestContext, *, requested: str = "") -> dict[str, Any]:
    """Phase 1 (``<kind>_pending``), the call, then the acknowledgement (or the refusal) committed.

    With an Idempotency-Key, a marker derived from it (``TXR#<derived id>``, written with the
    transaction) names this request's transaction, so a retry of this very request finds it: still
    pending, it asks the processor again; settled, it answers with the payment.
    """
    table = dal.payments_table()
    request = derived_id("txn", p, ctx, "modify", payment_id, kind, requested) if ctx.idempotency_key else None
    for _ in range(OPTIMISTIC_RETRIES):
        item = payments.load_payment(p, payment_id)
        pending = item.get("pending_action")
        earlier_id = _requested_before(p, request, payment_id) if request else None
        if earlier_id is not None:
            if pending and pending["transaction_id"] == earlier_id:
                return resume_modification(item)  # this very request, retried: ask the processor again
            earlier = payments.load_transaction(p.owner, earlier_id)
            if earlier is not None:
                if earlier["status"] == "failed":
                    raise ProcessorRefused(f"the processor refused the {kind}: {earlier.get('processor_reason') or ''}",
                                           status=item["status"])
                return payments.view(item)  # settled since: the payment as it stands
        if pending:
            raise ModificationPending(f"a {pending['type']} of this payment is waiting for the processor's confirmation; "
                                      "retry once it settles (the webhook tells you)", status=item["status"])
        now = clock.now()
        payments._require(item, kind, now)
        amount = amount_of(item)
        txn_id = payments.new_txn_id(now)
        pending = {"type": kind, "transaction_id": txn_id, "amount": amount, "reason": reason, "from": item["status"],
                   "requested_at": clock.iso(now), "acknowledged": False}
        fields = {"status": PENDING_STATUS[kind], "pending_action": pending}
        txn = payments._transaction_row(p, item, txn_id=txn_id, type_=kind, status="pending", amount=amount, now=now,
                                        response_code="", response_message="Pending", reason=reason)
        condition = "#version = :seen"
        vals = dal.values(**fields, next=item["version"] + 1, seen=item["version"])
        if kind in ("capture", "void"):
            condition += " AND #status = :from AND expires_at > :now"
            vals |= dal.values(**{"from": "authorized", "now": clock.iso(now)})
        schedule_recovery(payment_id, txn_id)
        actions = [
            dal.update_action(table, item["pk"], item["sk"], _set(fields) + ", #version = :next", condition=condition,
                              names=_names(fields) | {"#version": "version", "#status": "status"}, vals=vals),
            dal.put_action(table, txn),
        ]
        if request:
            actions.append(dal.put_action(table, {
                "pk": f"TXR#{request}", "sk": "TXR", "merchant_id": p.merchant_id, "mode": p.mode,
                "payment_id": payment_id, "transaction_id": txn_id,
                "ttl": int((now + dt.timedelta(days=30)).timestamp())}))
        try:
            dal.transact(actions)
        except dal.ConditionFailed:
            continue
        item = {**item, **fields, "version": item["version"] + 1}
        return _send_modification(item)
    raise ConcurrentUpdate("the payment is being changed by other requests; retry with the same Idempotency-Key")


def _requested_before(p: Principal, request: str, payment_id: str) -> str | None:
    """The transaction an earlier attempt of this keyed request made, if any (one BatchGetItem).

    Its marker; or, for a request first made before markers, the transaction row it wrote under the
    derived id itself (the older layout).
    """
    table = dal.payments_table()
    found = dal.get_many(table, [(f"TXR#{request}", "TXR"), (f"TXN#{request}", "TXN")])
    marker, legacy = found.get((f"TXR#{request}", "TXR")), found.get((f"TXN#{request}", "TXN"))
    if marker is not None and marker["merchant_id"] == p.merchant_id and marker["payment_id"] == payment_id:
        return str(marker["transaction_id"])
    if legacy is not None and legacy["merchant_id"] == p.merchant_id and legacy["payment_id"] == payment_id:
        return request
    return None


def _transaction_key(item: dict[str, Any], txn_id: str) -> tuple[str, str]:
    """Where a payment's transaction row is: its merchant's partition, or its own key in the older layout."""
    owner = f"{item['merchant_id']}#{item['mode']}"
    row = payments.load_transaction(owner, txn_id)
    return (row["pk"], row["sk"]) if row is not None else (payments.txn_partition(owner), txn_id)


def _modification_op(item: dict[str, Any]) -> Operation:
    pending = item["pending_action"]
    return Operation(pending["type"], pending["transaction_id"], pending["amount"], item["currency"], item["id"],
                     payment_reference=item["processor_reference"])


def _send_modification(item: dict[str, Any], *, replay: bool = False) -> dict[str, Any]:
    outcome = _call(connector_of(item), _modification_op(item), replay=replay)
    if outcome is None:
        raise PaymentProcessing(payments.view(item))
    before_commit("modify", item["pending_action"]["transaction_id"])
    if outcome.status == "declined":
        after = settle_modification(item["id"], item["pending_action"]["transaction_id"], outcome)
        raise ProcessorRefused(f"the processor refused the {item['pending_action']['type']}: "
                               f"{outcome.processor_reason or outcome.message}", status=after["status"])
    if outcome.status == "approved":  # a processor that confirms at once
        return payments.view(settle_modification(item["id"], item["pending_action"]["transaction_id"], outcome))
    return payments.view(acknowledge(item, outcome))


def resume_modification(item: dict[str, Any]) -> dict[str, Any]:
    pending = item["pending_action"]
    if pending.get("acknowledged"):
        return payments.view(item)
    return _send_modification(item, replay=True)


def acknowledge(item: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The processor acknowledged the modification: record its reference; the notification settles it."""
    table = dal.payments_table()
    txn_id = item["pending_action"]["transaction_id"]
    actions = [
        dal.update_action(table, item["pk"], item["sk"],
                          "SET pending_action.acknowledged = :yes, pending_action.processor_reference = :psp",
                          condition="pending_action.transaction_id = :txn",
                          vals=dal.values(yes=True, psp=outcome.processor_reference, txn=txn_id)),
        dal.update_action(table, *_transaction_key(item, txn_id), "SET processor_reference = :psp",
                          condition="attribute_exists(pk)",
                          vals=dal.values(psp=outcome.processor_reference)),
    ]
    if outcome.processor_reference:
        actions.append(dal.put_action(table, _psp_row(item, outcome.processor_reference, txn_id)))
    try:
        dal.transact(actions)
    except dal.ConditionFailed:
        pass  # settled by its notification meanwhile (or acknowledged by a retry): read what is there
    return dal.get(table, item["pk"], item["sk"]) or item


def settle_modification(payment_id: str, txn_id: str, outcome: Outcome, *,
                        also: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``<kind>_pending`` -> its final state (or back where it was, when refused), with its event, exactly once."""
    table = dal.payments_table()
    for _ in range(OPTIMISTIC_RETRIES):
        item = dal.get(table, f"PAY#{payment_id}", "PAY")
        if item is None:
            raise LookupError(payment_id)
        pending = item.get("pending_action")
        if not pending or pending["transaction_id"] != txn_id:
            if also:
                _record_only(also)
            return item  # settled before
        now = clock.now()
        p = system_principal(item)
        kind, amount = pending["type"], pending["amount"]
        ok = outcome.status == "approved"
        if not ok:
            fields: dict[str, Any] = {"status": pending["from"]}
            event_type, txn_status = f"payment.{kind}_failed", "failed"
        elif kind == "capture":
            fields = {"status": PaymentStatus.CAPTURED, "captured_amount": amount, "captured_at": clock.iso(now)}
            event_type, txn_status = "payment.captured", "captured"
        elif kind == "void":
            fields = {"status": PaymentStatus.VOIDED, "voided_at": clock.iso(now), "void_reason": pending["reason"]}
            event_type, txn_status = "payment.voided", "voided"
        else:
            total = item["refunded_amount"] + amount
            fields = {"status": PaymentStatus.REFUNDED if total == item["captured_amount"] else PaymentStatus.PARTIALLY_REFUNDED,
                      "refunded_amount": total, "refunded_at": clock.iso(now), "refund_reason": pending["reason"]}
            event_type, txn_status = "payment.refunded", "refunded"
        fields["transaction_id"] = txn_id
        updated = {**item, **fields, "version": item["version"] + 1}
        updated.pop("pending_action")
        before = payments.view(item, now)
        actions = [
            dal.update_action(table, item["pk"], item["sk"], _set(fields) + ", #version = :next REMOVE pending_action",
                              condition="#version = :seen AND pending_action.transaction_id = :txn",
                              names=_names(fields) | {"#version": "version"},
                              vals=dal.values(**fields, next=item["version"] + 1, seen=item["version"], txn=txn_id)),
            dal.update_action(table, *_transaction_key(item, txn_id),
                              "SET #s = :s, response_code = :code, response_message = :msg, processor_reason = :why",
                              condition="#s = :pending", names={"#s": "status"},
                              vals=dal.values(s=txn_status, code=outcome.code, msg=outcome.message,
                                              why=outcome.processor_reason, pending="pending")),
            dal.put_action(table, event_row(p, None, type_=event_type, obj=payments.view(updated, now),
                                            sequence=item["version"] + 1,
                                            previous={k: before[k] for k in fields if k in before}, now=now)),
        ]
        base = len(actions)
        actions += also or []
        try:
            dal.transact(actions)
        except dal.ConditionFailed as exc:
            if exc.index is not None and exc.index >= base:
                return item
            continue
        return updated
    raise ConcurrentUpdate("the payment is being changed by other requests; retry")


# ---------------------------------------------------------------- the recovery worker


def recover(payment_id: str, reference: str) -> str:
    """Finish what a request left between its phases. Returns what it did; raises OutcomeUnknown to be retried."""
    item = dal.get(dal.payments_table(), f"PAY#{payment_id}", "PAY")
    if item is None:
        return "absent"  # the recovery point never landed: nothing was sent to the processor
    if item["status"] == PaymentStatus.PROCESSING and reference == payment_id:
        if complete(item) is None:
            raise OutcomeUnknown(f"{payment_id}: the processor cannot tell yet")
        return "completed"
    pending = item.get("pending_action")
    if pending and pending["transaction_id"] == reference and not pending.get("acknowledged"):
        try:
            _send_modification(item, replay=True)
        except PaymentProcessing:
            raise OutcomeUnknown(f"{reference}: the processor cannot tell yet") from None
        except ProcessorRefused:
            return "refused"
        return "acknowledged"
    return "settled"


# ---------------------------------------------------------------- processor notifications


def apply_notification(merchant_id: str, body: str) -> int:
    """An Adyen notification for a merchant's live connector: verify, then settle each item exactly once.

    Returns how many items changed something. Raises Unauthenticated when the signature does not verify.
    """
    row = _connectors().load(merchant_id, "live")
    if row is None or row.get("connector") != "adyen":
        raise Unauthenticated("no Adyen connector is configured for this merchant", param="merchant_id")
    from tahsil.connectors.adyen import InvalidNotification, parse_notifications

    try:
        items = parse_notifications(body, _connectors().credentials(row)["hmac_key"])
    except InvalidNotification as exc:
        raise Unauthenticated(f"notification rejected: {exc}") from None
    changed = 0
    for note in items:
        if note.merchant_account != row["merchant_account"]:
            raise InvalidRequest("notification is for another merchant account", param="merchantAccountCode")
        changed += _apply_one(merchant_id, note)
    return changed


def _identity_row(merchant_id: str, note: Notification) -> dict[str, Any]:
    ttl = int((clock.now() + dt.timedelta(days=30)).timestamp())
    return {"pk": f"NTF#adyen#{merchant_id}#{note.identity}", "sk": "NTF", "merchant_id": merchant_id,
            "received_at": clock.iso(clock.now()), "ttl": ttl}


def _apply_one(merchant_id: str, note: Notification) -> int:
    table = dal.payments_table()
    identity = _identity_row(merchant_id, note)
    if dal.get(table, identity["pk"], "NTF") is not None:
        return 0  # a duplicate: applied (or recorded) before
    also = [dal.put_action(table, identity)]
    ref = note.merchant_reference
    if note.event_code == "AUTHORISATION":
        item = dal.get(table, f"PAY#{ref}", "PAY") if ref.startswith("pay_") else None
        if item is None or item["merchant_id"] != merchant_id:
            logger.warning("AUTHORISATION for an unknown reference", extra={"reference": ref[:64]})
            _record_only(also)
            return 0
        before = item["status"]
        after = commit_create(item["id"], note.outcome(), also=also)
        return int(before == PaymentStatus.PROCESSING and after["status"] != PaymentStatus.PROCESSING)
    kind = SETTLE_EVENTS.get(note.event_code)
    if kind is None:
        _record_only(also)  # REPORT_AVAILABLE, CHARGEBACK...: not Tahsil's to settle (see docs/connectors.md)
        return 0
    txn_id = ref if ref.startswith("txn_") else None
    if txn_id is None:  # fall back on the modification's pspReference
        link = dal.get(table, f"PSP#adyen#{note.psp_reference}", "PSP")
        txn_id = link["transaction_id"] if link else None
    txn = payments.load_transaction(f"{merchant_id}#live", txn_id) if txn_id else None
    if txn is None:
        logger.warning("modification notification for an unknown reference", extra={"reference": ref[:64]})
        _record_only(also)
        return 0
    outcome = note.outcome()
    after = settle_modification(txn["payment_id"], txn["id"], outcome, also=also)
    return int(after.get("transaction_id") == txn["id"] and not after.get("pending_action"))
