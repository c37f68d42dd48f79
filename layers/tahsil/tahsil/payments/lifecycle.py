"""One payment lifecycle for test and live: authorize, sale, capture, void, refund, expire, recovery.

Every operation takes the same phases, whichever connector answers (docs/connectors.md draws them):

1. **Check** the request against the state machine (``tahsil.payments.machine``).
2. **Recovery point** (only for a connector that answers over the network, ``Connector.remote``): the
   payment is written ``processing``, or the modification ``<kind>_pending`` with its ``pending``
   transaction, after a delayed message for the recovery worker is queued. The simulator answers
   deterministically inside the request and skips it, so a test payment costs what it always did.
3. **Call** the connector with Tahsil's id (``pay_...``/``txn_...``) as reference and idempotency key.
4. **Commit** the outcome with ``transition``: one conditional transaction holding the payment's change,
   its event, its transaction row and counters, and the request's idempotent answer
   (``RequestContext.binding``). A processor's definite answer is final; anything else
   (timeout, 5xx, "in progress", a 4xx about the request) leaves the operation pending (202) and
   binds nothing: the same-key retry, the recovery worker or the notification completes it.

``tahsil.payments.transitions.transition`` is the one primitive every status change goes through (notifications
and timers too): read, decide through the machine, write conditionally on the version read, retry a lost race.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tahsil.connectors.base import CardData, Connector, ConnectorError, Operation, Outcome, OutcomeUnknown
from tahsil.kernel import clock
from tahsil.kernel.errors import (
    ConcurrentUpdate,
    Conflict,
    InvalidRequest,
    LiveConnectorNotConfigured,
    PaymentDeclined,
    PaymentProcessing,
    TestCardInLiveMode,
)
from tahsil.kernel.events import RequestContext, event_row, owner_keys
from tahsil.kernel.ids import new_id
from tahsil.kernel.money import max_amount
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import logger, metrics
from tahsil.payments import authentication, cards, fraud, ledger, machine
from tahsil.payments.models import PaymentCreate, PaymentStatus
from tahsil.payments.payments import (
    SIMULATOR,
    EarlyCount,
    authorization_ttl,
    count_attempt,
    load_payment,
    load_transaction,
    new_txn_id,
    transaction_actions,
    transaction_row,
    view,
)
from tahsil.payments.transitions import OPTIMISTIC_RETRIES, AlsoFailed, Step, psp_rows, transition
from tahsil.store import aws, crypto, dal

if TYPE_CHECKING:
    from types import ModuleType

TEST_CARDS: frozenset[str] = frozenset({*cards.SEED_TEST_CARDS, *cards.VELOCITY_TEST_CARDS, *cards.THREEDS_TEST_CARDS})
DECLINE_UNREACHABLE = "processor_unreachable"


def processor_timeout() -> float:
    """Seconds one processor call may take: 8 by default, well under the functions' 15 s timeout."""
    return float(os.environ.get("PROCESSOR_TIMEOUT_SECONDS", "8"))


def recovery_delay() -> int:
    return int(os.environ.get("RECOVERY_DELAY_SECONDS", "60"))


def recovery_deadline() -> int:
    """Seconds the recovery worker keeps asking before an unanswered authorization fails (and ops are alarmed)."""
    return int(os.environ.get("RECOVERY_DEADLINE_SECONDS", "3600"))


def checkpoint(stage: str, reference: str) -> None:
    """A named point between two phases. Does nothing; the fault-injection tests crash here.

    Stages: ``recovery_point`` (before it is written), ``call`` (written, before the processor is asked),
    ``commit`` (the processor answered, before Tahsil commits), ``answer`` (committed, before the response)."""


def _connectors() -> ModuleType:
    """Live connectors' settings (and the Adyen library under them), loaded on the first live request."""
    from tahsil.connectors import settings

    return settings


def route(p: Principal, pan: str) -> Connector:
    """The connector for a new payment: the simulator in test mode; in live mode the merchant's, or a refusal."""
    if not p.livemode:
        return SIMULATOR
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
    """The connector a payment went through (a test payment's is the simulator)."""
    if not item.get("connector") or item["connector"] == SIMULATOR.name:
        return SIMULATOR
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


def schedule_recovery(payment_id: str, reference: str, *, attempt: int = 0, delay: int | None = None) -> None:
    """Queued before the recovery point is written: a crash after it always leaves a worker to finish."""
    url = os.environ.get("RECOVERY_QUEUE_URL")
    if not url:
        logger.error("RECOVERY_QUEUE_URL is not set: no recovery worker will look at this payment",
                     extra={"payment_id": payment_id})
        return
    body = {"payment_id": payment_id, "reference": reference, "attempt": attempt}
    aws.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(body),
                                   DelaySeconds=min(900, recovery_delay() if delay is None else delay))


def call(connector: Connector, op: Operation) -> Outcome | None:
    """The processor's answer, or None when it is not known (it may or may not have acted)."""
    try:
        return connector.execute(op, timeout=processor_timeout())
    except OutcomeUnknown as exc:
        logger.warning("processor outcome unknown", extra={"reference": op.reference, "why": str(exc)})
        return None


# ---------------------------------------------------------------- authorize and sale


def create_counted(p: Principal | None, req: PaymentCreate, *, capture: bool, base_url: str,
                   respond: Callable[[Callable[[Principal, RequestContext], Any]], Any]) -> Any:
    """A handler's authorize or sale: ``respond`` (tahsil.api.http's) runs ``create`` under the idempotency
    lock, with the attempt counted meanwhile (``EarlyCount``); a count no payment took is given back.
    ``base_url``: where this request's public pages live (a 3-D Secure challenge's next_action points there)."""
    authentication.BASE_URL.set(base_url)
    early = EarlyCount(p, req.card.pan) if p is not None else None
    try:
        return respond(lambda who, ctx: create(who, req, capture=capture, ctx=ctx, early=early))
    finally:
        if early is not None:
            early.settle()


ExtraActions = Callable[[dict[str, Any], str], list[dict[str, Any]]]


class PaymentExists(Exception):
    def __init__(self, payment_id: str) -> None:
        super().__init__(payment_id)
        self.payment_id = payment_id


def declined(item: dict[str, Any]) -> PaymentDeclined:
    """A failed payment as the 402 the merchant gets."""
    code = item["response_code"]
    if code == "59" and item.get("fraud_decision") == "decline":
        text = f"payment declined: high fraud risk (score: {item['fraud_score']})"
    elif item.get("decline_code") == DECLINE_UNREACHABLE:
        text = "payment failed: the processor could not be reached; nothing was charged. Retry with the card " \
               "and a new Idempotency-Key"
    else:
        text = f"card declined: {item['response_message'].lower()} (code: {code})"
    return PaymentDeclined(text, payment_id=item["id"], transaction_id=item["transaction_id"],
                           decline_code=item.get("decline_code") or code, fraud_score=item["fraud_score"])


def render(item: dict[str, Any]) -> dict[str, Any]:
    """A payment as the authorize/sale answer: the payment, the 402 its decline is, or 202 while processing."""
    if item["status"] == PaymentStatus.PROCESSING:
        raise PaymentProcessing(view(item))
    if item["status"] == PaymentStatus.FAILED:
        raise declined(item)
    return view(item)


def _answer(ctx: RequestContext | None) -> Callable[[dict[str, Any], dt.datetime], list[dict[str, Any]]] | None:
    """The authorize/sale answer bound with the commit: the payment, or its 402."""
    if ctx is None or ctx.answer is None:
        return None

    def bind(updated: dict[str, Any], now: dt.datetime) -> list[dict[str, Any]]:
        if updated["status"] == PaymentStatus.FAILED:
            return ctx.binding(error=declined(updated))
        return ctx.binding(view(updated, now))

    return bind


def create(p: Principal, req: PaymentCreate, *, capture: bool, ctx: RequestContext,
           extra_actions: ExtraActions | None = None, early: EarlyCount | None = None,
           bind: Callable[[dict[str, Any], dt.datetime], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """POST /v1/payments/authorize and /sale (and a payment intent's confirm, with ``extra_actions`` and ``bind``:
    its own object's change and its own answer, in the payment's transaction)."""
    if req.amount > max_amount(req.currency):
        raise InvalidRequest(f"amount must be at most {max_amount(req.currency)} for {req.currency}", param="amount")
    connector = route(p, req.card.pan)
    if extra_actions and connector.remote:
        raise Conflict("live payment intents cannot be paid through a processor connector yet; use the payments API")
    kind = "sale" if capture else "authorize"
    now = clock.now()
    pan = req.card.pan
    fingerprint = crypto.card_fingerprint(pan)
    payment_id = derived_id("pay", p, ctx, "create", str(capture), str(req.amount), req.currency, fingerprint) \
        if connector.remote else new_id("pay")
    card = CardData(pan, req.card.exp_month, req.card.exp_year, req.card.cvv.get_secret_value(), req.card.cardholder_name)
    op = Operation(kind, payment_id, req.amount, req.currency, payment_id, card=card)
    # The simulator's answer is known before anything is written (deterministic, no side effect).
    answer = None if connector.remote else connector.execute(op, timeout=0)
    taken = early.take(p) if early is not None else None
    count = taken if taken is not None else count_attempt(p, fingerprint, now)
    risk = fraud.score(amount=req.amount, currency=req.currency, velocity=count,
                       risky_card=answer.risk_flag if answer else False, test_card=cards.test_card_rule(pan, p.mode))
    if answer is not None and answer.status == "requires_action" and risk.decision != "decline":
        trigger, outcome = ("authorize.requires_action", answer) if req.return_url else \
            ("authorize.declined", authentication.declined_without_return())
    elif answer is not None and answer.status != "approved":
        trigger, outcome = "authorize.declined", answer
    elif risk.decision == "decline":
        trigger, outcome = "authorize.declined", Outcome("declined", "59", "Suspected fraud")
    elif answer is None:
        trigger, outcome = "authorize.pending", Outcome("pending", "00", "Processing")
    else:
        trigger, outcome = f"{kind}.approved", answer
    status = machine.next_status(machine.NEW, trigger)
    assert status is not None
    payment = _new_payment(p, req, payment_id, new_txn_id(now), status, outcome, risk, connector, kind, now, pan)
    if status == PaymentStatus.REQUIRES_ACTION:
        payment |= authentication.fields(kind, payment_id, str(req.return_url), outcome, now)
    elif outcome.processor_reason == authentication.DECLINE_REQUIRED:
        payment["decline_code"] = authentication.DECLINE_REQUIRED
    elif outcome.three_d_secure:
        payment["three_d_secure"] = outcome.three_d_secure

    def exists() -> PaymentExists:
        if early is not None and taken is not None:
            early.release()
        return PaymentExists(payment_id)

    table = dal.payments_table()
    if status == PaymentStatus.PROCESSING:
        checkpoint("recovery_point", payment_id)
        schedule_recovery(payment_id, payment_id)  # first: a crash after the recovery point leaves a worker
        try:
            dal.put(table, payment, condition="attribute_not_exists(pk)")
        except dal.ConditionFailed:
            exists()
            return resume(p, load_payment(p, payment_id), card=card, ctx=ctx)
        checkpoint("call", payment_id)
        result = call(connector, op)
        if result is None or result.status == "pending":
            raise PaymentProcessing(view(payment))
        checkpoint("commit", payment_id)
        committed = commit_authorization(payment_id, result, ctx=ctx, known=payment)
        checkpoint("answer", payment_id)
        return render(committed)
    # Decided in the request (the simulator, or a fraud decline before any call): one transaction.
    txn = transaction_row(payment, txn_id=payment["transaction_id"],
                          type_="decline" if status == PaymentStatus.FAILED else kind.replace("authorize", "authorization"),
                          status=status, amount=req.amount, now=now, response_code=outcome.code,
                          response_message=outcome.message, auth_code=payment["auth_code"])
    event = event_row(p, ctx, type_=f"payment.{status}", obj=view(payment, now), sequence=1, previous={}, now=now)
    actions = [dal.put_action(table, payment), dal.put_action(table, event)]
    if status != PaymentStatus.REQUIRES_ACTION:  # its transaction is written when the shopper is back
        actions += transaction_actions(table, p, txn)
    actions += ledger.movements(None, payment, now)
    base = len(actions)
    if extra_actions:
        actions += extra_actions(payment, status)
    bound = len(actions)
    bind = bind or _answer(ctx)
    if bind is not None:
        actions += bind(payment, now)
    checkpoint("commit", payment_id)
    for _ in range(OPTIMISTIC_RETRIES):
        try:
            dal.transact(actions)
        except dal.ConditionFailed as exc:
            if exc.index is not None and base <= exc.index < bound:
                raise AlsoFailed(exc.index - base) from exc
            if exc.index is not None and exc.index >= bound:
                raise ConcurrentUpdate("this request was answered by another attempt; retry") from exc
            if exc.index == 0:
                raise exists() from exc
            if exc.index is None:  # a conflicting transaction (a counter shard, the caller's object): again
                continue
            raise
        break
    else:
        raise ConcurrentUpdate("too many concurrent payments for this account; retry")
    if bind is not None:
        ctx.bound()
    metrics.add_metric(name=f"Payment_{status}", unit="Count", value=1)
    if status == PaymentStatus.FAILED:
        metrics.add_metric(name=f"PaymentDeclined_{outcome.code}", unit="Count", value=1)
    checkpoint("answer", payment_id)
    return render(payment)


def _new_payment(p: Principal, req: PaymentCreate, payment_id: str, txn_id: str, status: str, outcome: Outcome,
                 risk: fraud.FraudResult, connector: Connector, kind: str, now: dt.datetime, pan: str) -> dict[str, Any]:
    # Binary, not base64 text: the payment item stays under 1 KB (one write unit, and one for its index copy).
    sealed = crypto.vault.seal(pan, context=f"{p.merchant_id}/{payment_id}", merchant=p.merchant_id)
    approved = status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED)
    payment = {
        "pk": f"PAY#{payment_id}", "sk": "PAY", **owner_keys(p, "PAY", now, payment_id),
        "id": payment_id, "merchant_id": p.merchant_id, "mode": p.mode, "version": 1,
        "status": status, "amount": req.amount, "currency": req.currency,
        "captured_amount": req.amount if status == PaymentStatus.CAPTURED else 0, "refunded_amount": 0,
        "card_brand": cards.detect_brand(pan), "card_last4": pan[-4:],
        "card_exp_month": req.card.exp_month, "card_exp_year": req.card.exp_year,
        "card_fingerprint": bytes.fromhex(crypto.card_fingerprint(pan)), "card_sealed": sealed,
        "cardholder_name": req.card.cardholder_name,
        "auth_code": outcome.auth_code if approved else None,
        "response_code": outcome.code if status != PaymentStatus.PROCESSING else "",
        "response_message": outcome.message,
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
    return payment


def resume(p: Principal, item: dict[str, Any], *, card: CardData | None = None,
           ctx: RequestContext | None = None) -> dict[str, Any]:
    """The same request again (its id derives from the Idempotency-Key): the outcome, asking the processor if
    it is still unknown. Only a retry that carries the card (``card``, CVC included) re-sends the authorization,
    with the same processor idempotency key, so the processor acts at most once; recovery never does."""
    if item["merchant_id"] != p.merchant_id or item["mode"] != p.mode:
        raise Conflict("idempotency key collision; use another Idempotency-Key")
    if item["status"] == PaymentStatus.PROCESSING and card is not None:
        op = Operation(item["attempt"]["kind"], item["id"], item["amount"], item["currency"], item["id"], card=card)
        outcome = call(connector_of(item), op)
        if outcome is not None and outcome.status != "pending":
            checkpoint("commit", item["id"])
            item = commit_authorization(item["id"], outcome, ctx=ctx, known=item)
    return render(item)


def commit_authorization(payment_id: str, outcome: Outcome, *, ctx: RequestContext | None = None,
                         also: Sequence[dict[str, Any]] = (), known: dict[str, Any] | None = None,
                         trigger: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The processor's answer to an authorization or sale, applied to the state it finds (the machine decides):
    processing -> authorized | captured | failed; a late answer that contradicts Tahsil's record wins, flagged."""

    def decide(item: dict[str, Any], now: dt.datetime) -> Step | None:
        kind = (item.get("attempt") or {}).get("kind", "authorize")
        move = trigger or ("authorize.declined" if outcome.status == "declined" else f"{kind}.approved")
        to = machine.next_status(item["status"], move)
        if to is None or (item["status"] == PaymentStatus.FAILED and item.get("response_code") == "59"):
            return None  # settled that way already, or a fraud decline that never reached the processor
        if extra is not None and item["status"] != PaymentStatus.REQUIRES_ACTION:
            return None  # the shopper's return, committed already (a refreshed or doubled return)
        contradicted = item["status"] not in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)
        approved = to != PaymentStatus.FAILED
        fields: dict[str, Any] = {
            "status": to, "response_code": outcome.code, "response_message": outcome.message,
            "auth_code": outcome.auth_code if approved else None,
            "processor_reference": outcome.processor_reference, "processor_reason": outcome.processor_reason,
            "captured_amount": item["amount"] if to == PaymentStatus.CAPTURED else 0,
            "captured_at": clock.iso(now) if to == PaymentStatus.CAPTURED else None,
            "expires_at": clock.iso(now + authorization_ttl()) if to == PaymentStatus.AUTHORIZED else None,
        }
        if move == "authorize.unreachable":
            fields["decline_code"] = DECLINE_UNREACHABLE
        fields |= extra or {}
        if contradicted:
            fields["review"] = {"reason": f"the processor's {move} arrived after Tahsil recorded {item['status']}",
                                "at": clock.iso(now)}
            metrics.add_metric(name="PaymentContradicted", unit="Count", value=1)
            logger.error("processor contradicts Tahsil's record", extra={"payment_id": item["id"], "was": item["status"],
                                                                         "now": to})
        txn_type = "decline" if not approved else ("sale" if to == PaymentStatus.CAPTURED else "authorization")
        txn_fields = {"type": txn_type, "response_code": outcome.code, "response_message": outcome.message,
                      "auth_code": fields["auth_code"], "processor_reference": outcome.processor_reference}
        step = Step(fields, f"payment.{to}", condition="#status = :from", vals=dal.values(**{"from": item["status"]}),
                    answer=_answer(ctx))
        if contradicted:
            row = load_transaction(f"{item['merchant_id']}#{item['mode']}", item["transaction_id"])
            if row is not None:
                return step._replace(txn_move=(row, to, txn_fields),
                                     more=psp_rows(item, outcome.processor_reference, item["transaction_id"]))
        txn = transaction_row(item, txn_id=item["transaction_id"], type_=txn_type, status=to, amount=item["amount"],
                              now=now, response_code=outcome.code, response_message=outcome.message,
                              auth_code=fields["auth_code"])
        txn["processor_reference"] = outcome.processor_reference
        return step._replace(txn_put=txn, more=psp_rows(item, outcome.processor_reference, item["transaction_id"]))

    updated, _ = transition(payment_id, decide, ctx=ctx, also=also, known=known)
    return updated
