"""Payment intents: one amount to collect on the hosted checkout page, paid at most once.

- The merchant creates an intent (secret key) and sends the customer to ``checkout_url``. The
  client secret in that URL is random (~190 bits), shown once, and stored only as its keyed
  hash; the public endpoints compare it in constant time.
- Confirming creates the payment through ``lifecycle.create`` and changes the intent in the
  SAME DynamoDB transaction, conditional on the intent's version, status and expiry: two
  concurrent confirms can never both charge, and a decline is counted exactly once. The
  fifth decline locks the intent.
- Every change writes its ``payment_intent.*`` event in that transaction too (the outbox);
  ``sequence`` is the intent's version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from tahsil.kernel import clock
from tahsil.kernel.errors import (
    ConcurrentUpdate,
    Conflict,
    IntentCompleted,
    IntentExpired,
    InvalidClientSecret,
    InvalidRequest,
    MaxAttemptsReached,
    NotFound,
    PaymentDeclined,
)
from tahsil.kernel.events import RequestContext, event_row, owner_keys
from tahsil.kernel.ids import looks_like, new_id, random_token
from tahsil.kernel.money import max_amount
from tahsil.kernel.principal import LATEST_API_VERSION, Principal
from tahsil.payments import authentication, lifecycle, payments, transitions
from tahsil.payments.models import (
    INTENT_TRANSITIONS,
    Customer,
    IntentConfirm,
    IntentCreate,
    IntentStatus,
    PaymentCreate,
    PaymentStatus,
    public_read,
    with_intent_id,
)
from tahsil.store import crypto, dal

MAX_ATTEMPTS = 5
INTENT_TTL = dt.timedelta(hours=1)
OPTIMISTIC_RETRIES = 12
FRAUD_DECLINE = "59"


# ---------------------------------------------------------------- views


def effective_status(item: dict[str, Any], now: dt.datetime) -> str:
    """An intent not paid by its expires_at is expired, whether or not a timer has run."""
    if item["status"] == IntentStatus.CREATED and clock.iso(now) >= item["expires_at"]:
        return IntentStatus.EXPIRED
    return item["status"]


def redirect_url(item: dict[str, Any]) -> str:
    """success_url, placeholder filled in, with ``payment_intent=pi_...`` added to its query unless
    it is there already (``?payment_intent={CHECKOUT_SESSION_ID}`` fills it in itself)."""
    parts = urlsplit(with_intent_id(item["success_url"], item["id"]))
    if any(name == "payment_intent" for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return urlunsplit(parts)
    extra = urlencode({"payment_intent": item["id"]})
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def cancel_url(item: dict[str, Any]) -> str:
    return with_intent_id(item["cancel_url"], item["id"])


def view(item: dict[str, Any], now: dt.datetime | None = None, payment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The intent as the merchant sees it; with the linked payment when it was read (manual capture shows here)."""
    now = now or clock.now()
    if payment is not None:
        payment_status: str | None = payments.effective_status(payment, now)
        captured, refunded = payment.get("captured_amount", 0), payment.get("refunded_amount", 0)
    else:
        payment_status = item.get("payment_status")
        captured = item["amount"] if payment_status == PaymentStatus.CAPTURED else 0
        refunded = 0
    return {
        "id": item["id"],
        "object": "payment_intent",
        "status": effective_status(item, now),
        "amount": item["amount"],
        "currency": item["currency"],
        "capture_method": item["capture_method"],
        "success_url": item["success_url"],
        "cancel_url": item["cancel_url"],
        "order_id": item.get("order_id"),
        "description": item.get("description"),
        "customer_email": item.get("customer_email"),
        "metadata": item.get("metadata") or {},
        "attempts": item["attempts"],
        "remaining_attempts": max(0, MAX_ATTEMPTS - item["attempts"]),
        "last_payment_error": item.get("last_payment_error"),
        "payment_id": item.get("payment_id"),
        "payment_status": payment_status,
        "amount_captured": captured,
        "amount_refunded": refunded,
        "livemode": item["mode"] == "live",
        "created_at": item["created_at"],
        "expires_at": item["expires_at"],
        "succeeded_at": item.get("succeeded_at"),
        "canceled_at": item.get("canceled_at"),
    }


def public_view(item: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """What the checkout page needs: no client secret, no customer data, no metadata, no order id."""
    now = now or clock.now()
    return {
        "id": item["id"],
        "object": "payment_intent",
        "status": effective_status(item, now),
        "amount": item["amount"],
        "currency": item["currency"],
        "merchant_name": item.get("merchant_name") or "",
        "description": item.get("description"),
        "success_url": with_intent_id(item["success_url"], item["id"]),
        "cancel_url": cancel_url(item),
        "remaining_attempts": max(0, MAX_ATTEMPTS - item["attempts"]),
        "payment_id": item.get("payment_id") if item["status"] == IntentStatus.SUCCEEDED else None,
        "livemode": item["mode"] == "live",
        "expires_at": item["expires_at"],
    }


# ---------------------------------------------------------------- reads


def _get(intent_id: str) -> dict[str, Any] | None:
    if not looks_like("pi", intent_id):
        raise InvalidRequest("id must be a payment intent id (pi_...)", param="id")
    return dal.get(dal.payments_table(), f"PI#{intent_id}", "PI")


def load(p: Principal, intent_id: str) -> dict[str, Any]:
    """The intent, if it belongs to this merchant and mode; otherwise a 404 that says nothing more."""
    item = _get(intent_id)
    if item is None or item["merchant_id"] != p.merchant_id or item["mode"] != p.mode:
        raise NotFound("payment intent not found", param="id")
    return item


def load_public(intent_id: str) -> dict[str, Any]:
    item = _get(intent_id)
    if item is None:
        raise NotFound("payment intent not found", param="id")
    return item


def principal_of(item: dict[str, Any]) -> Principal:
    """Who acts on the public endpoints: the intent's merchant and mode, never the caller's say-so."""
    return Principal(
        merchant_id=item["merchant_id"],
        mode=item["mode"],
        key_id=item["id"],
        key_type="client_secret",
        api_version=item.get("api_version") or LATEST_API_VERSION,
        merchant_name=item.get("merchant_name") or "",
    )


def public_principal(intent_id: str) -> Principal:
    return principal_of(load_public(intent_id))


def public_get(intent_id: str) -> tuple[Principal, Callable[[Principal, RequestContext], dict[str, Any]]]:
    """``GET /public/payment-intents/{id}``: who owns the intent (the request acts as them) and its public read."""
    item = load_public(intent_id)
    return principal_of(item), lambda _who, _ctx: public_read(public_view(item))


def presented_secret(header: str | None, query: str | None) -> str | None:
    """The client secret a public request presents: the ``X-Client-Secret`` header, else the query parameter."""
    return header or query


def secret_ok(item: dict[str, Any], presented: str | None) -> bool:
    return bool(presented) and len(presented or "") <= 256 and crypto.same_secret(item["secret_hash"], presented or "")


def _linked_payment(item: dict[str, Any]) -> dict[str, Any] | None:
    if not item.get("payment_id"):
        return None
    return dal.get(dal.payments_table(), f"PAY#{item['payment_id']}", "PAY")


def get(p: Principal, intent_id: str) -> dict[str, Any]:
    item = load(p, intent_id)
    return view(item, payment=_linked_payment(item))


def get_public(intent_id: str) -> dict[str, Any]:
    return public_view(load_public(intent_id))


def checkout_state(intent_id: str, client_secret: str | None) -> dict[str, Any] | None:
    """What the hosted page shows, for whoever holds the client secret; None for any bad link."""
    if not looks_like("pi", intent_id):
        return None
    item = dal.get(dal.payments_table(), f"PI#{intent_id}", "PI")
    if item is None or not secret_ok(item, client_secret):
        return None
    now = clock.now()
    state = {**public_view(item, now), "customer_email": item.get("customer_email"),
             "last_payment_error": item.get("last_payment_error")}
    if state["status"] == IntentStatus.SUCCEEDED:
        state["redirect_url"] = redirect_url(item)
    payment = _linked_payment(item) if state["status"] == IntentStatus.REQUIRES_ACTION else None
    if payment is not None and payment["status"] == PaymentStatus.REQUIRES_ACTION and payment.get("action_token"):
        # Back on the page mid-challenge: a way on to the bank's page (relative: works under a stage prefix too).
        query = urlencode({"token": payment["action_token"], "client_secret": client_secret})
        state["authentication_url"] = f"authenticate/{quote(payment['id'], safe='')}?{query}"
    return state


# ---------------------------------------------------------------- changes


def create(p: Principal, req: IntentCreate, ctx: RequestContext, *, base_url: str) -> dict[str, Any]:
    if req.amount > max_amount(req.currency):
        raise InvalidRequest(f"amount must be at most {max_amount(req.currency)} for {req.currency}", param="amount")
    now = clock.now()
    intent_id = new_id("pi")
    secret = f"{intent_id}_secret_{random_token(32)}"  # 32 base62 characters: ~190 bits
    item = {
        "pk": f"PI#{intent_id}", "sk": "PI", **owner_keys(p, "PI", now, intent_id),
        "id": intent_id, "merchant_id": p.merchant_id, "mode": p.mode, "version": 1,
        "merchant_name": p.merchant_name, "api_version": p.api_version, "key_id": p.key_id,
        "status": IntentStatus.CREATED, "amount": req.amount, "currency": req.currency,
        "capture_method": req.capture_method,
        "success_url": req.success_url, "cancel_url": req.cancel_url or req.success_url,
        "order_id": req.order_id, "description": req.description, "customer_email": req.customer_email,
        "metadata": req.metadata or None,
        "attempts": 0, "secret_hash": crypto.hash_secret(secret),
        "created_at": clock.iso(now), "expires_at": clock.iso(now + INTENT_TTL),
    }
    table = dal.payments_table()
    dal.transact([
        dal.put_action(table, item),
        dal.put_action(table, event_row(p, ctx, type_="payment_intent.created", obj=view(item, now), sequence=1,
                                        previous={}, now=now)),
    ])
    return {**view(item, now), "client_secret": secret,
            "checkout_url": f"{base_url}/checkout/{intent_id}?client_secret={quote(secret, safe='')}"}


def change(p: Principal, ctx: RequestContext, item: dict[str, Any], fields: dict[str, Any], *, event_type: str,
            now: dt.datetime, condition: str, names: dict[str, str],
            vals: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The conditional update of the intent (on the version read, plus ``condition``) and its event."""
    table = dal.payments_table()
    version = item["version"]
    updated = {**item, **fields, "version": version + 1}
    before = view(item, now)
    previous = {k: before[k] for k in fields if k in before}
    all_names = {f"#{k}": k for k in fields} | {"#version": "version"} | names
    sets = ", ".join(f"#{k} = :{k}" for k in fields)
    all_vals = dal.values(**fields, next=version + 1, seen=version) | vals
    actions = [
        dal.update_action(table, item["pk"], item["sk"], f"SET {sets}, #version = :next",
                          condition=f"#version = :seen AND {condition}", names=all_names, vals=all_vals),
        dal.put_action(table, event_row(p, ctx, type_=event_type, obj=view(updated, now), sequence=version + 1,
                                        previous=previous, now=now)),
    ]
    return updated, actions


def _require_payable(item: dict[str, Any], now: dt.datetime) -> None:
    status = effective_status(item, now)
    if status in INTENT_TRANSITIONS["confirm"]:
        return
    if status == IntentStatus.EXPIRED:
        raise IntentExpired("payment intent expired (valid for 1 hour)")
    if status == IntentStatus.LOCKED:
        raise MaxAttemptsReached(f"maximum payment attempts reached ({MAX_ATTEMPTS})")
    if status == IntentStatus.SUCCEEDED:
        raise Conflict("payment intent already succeeded", status=status)
    if status == IntentStatus.REQUIRES_ACTION:
        raise Conflict("the customer is authenticating a payment of this intent with their bank; wait for it",
                       status=status)
    raise Conflict("payment intent was canceled", status=status)


def _decline_text(payment: dict[str, Any]) -> str:
    # The fraud score stays with the merchant: the customer's browser learns only that it was declined.
    if payment["response_code"] == FRAUD_DECLINE:
        return "card declined: the payment could not be approved"
    return f"card declined: {payment['response_message'].lower()}"


def failed_attempt(item: dict[str, Any], payment: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The intent's fields after a declined attempt (seed 002: counted once, the fifth locks it). The code is
    the decline code when there is one (3-D Secure: ``authentication_failed``...), else the issuer's."""
    attempts = item["attempts"] + 1
    code = payment.get("decline_code") or payment["response_code"]
    fields: dict[str, Any] = {"attempts": attempts, "last_payment_error": {
        "code": code, "message": _decline_text(payment), "payment_id": payment["id"]}}
    if attempts >= MAX_ATTEMPTS:
        fields |= {"status": IntentStatus.LOCKED, "locked_at": clock.iso(now)}
    return fields


def _live_route(p: Principal, req: IntentConfirm) -> None:
    """Live mode never fakes: a test card is a 402 and no connector a 403 (tahsil.payments.lifecycle.route).
    Confirming through a remote processor is not built yet: refused before anything is charged."""
    if p.livemode and lifecycle.route(p, req.card.pan).remote:
        raise Conflict("live payment intents cannot be paid through a processor connector yet; use the payments API")


def confirm(p: Principal, intent_id: str, client_secret: str | None, req: IntentConfirm,
            ctx: RequestContext, *, base_url: str = "") -> dict[str, Any]:
    """Pay the intent with a card. The payment and the intent's change land in one transaction.

    A card that needs 3-D Secure leaves both ``requires_action``: the payment's return_url is this hosted
    checkout (``base_url``), and ``tahsil.payments.intent_challenge`` settles the intent on the customer's return."""
    authentication.BASE_URL.set(base_url)
    # The client secret first: nothing else (live or test, connector or none) is told to a caller without it.
    if not secret_ok(load_public(intent_id), client_secret):
        raise InvalidClientSecret("client secret is invalid", param="client_secret")
    _live_route(p, req)
    for _ in range(OPTIMISTIC_RETRIES):
        item = load_public(intent_id)
        if not secret_ok(item, client_secret):
            raise InvalidClientSecret("client secret is invalid", param="client_secret")
        now = clock.now()
        _require_payable(item, now)
        email = req.customer_email or item.get("customer_email")
        name = req.card.cardholder_name
        metadata = {**(item.get("metadata") or {}), "payment_intent": item["id"]}
        if item.get("order_id"):
            metadata["order_id"] = item["order_id"]
        payment_req = PaymentCreate(
            amount=item["amount"], currency=item["currency"], card=req.card,
            customer=Customer(email=email, name=name) if email or name else None,
            description=item.get("description"), metadata=metadata,
            return_url=f"{authentication.base_url()}/checkout/{item['id']}" if authentication.base_url() else None,
        )
        outcome: dict[str, Any] = {}

        def attempt(payment: dict[str, Any], status: str, item: dict[str, Any] = item, now: dt.datetime = now,
                    outcome: dict[str, Any] = outcome) -> list[dict[str, Any]]:
            if status == PaymentStatus.FAILED:
                fields = failed_attempt(item, payment, now)
                event_type = "payment_intent.payment_failed"
            else:
                waiting = status == PaymentStatus.REQUIRES_ACTION
                fields = {"status": IntentStatus.REQUIRES_ACTION if waiting else IntentStatus.SUCCEEDED,
                          "payment_id": payment["id"], "payment_status": payment["status"]}
                if not waiting:
                    fields["succeeded_at"] = clock.iso(now)
                if req.customer_email and not item.get("customer_email"):
                    fields["customer_email"] = req.customer_email
                event_type = "payment_intent.requires_action" if waiting else "payment_intent.succeeded"
            updated, actions = change(
                p, ctx, item, fields, event_type=event_type, now=now,
                condition="#st = :payable AND #exp > :now", names={"#st": "status", "#exp": "expires_at"},
                vals=dal.values(payable=IntentStatus.CREATED, now=clock.iso(now)))
            outcome.update(intent=updated, payment=payment)
            return actions

        def declined(outcome: dict[str, Any] = outcome) -> PaymentDeclined:
            after = outcome["intent"]
            remaining = max(0, MAX_ATTEMPTS - after["attempts"])
            text = after["last_payment_error"]["message"]
            if remaining == 0:
                text += f"; maximum payment attempts reached ({MAX_ATTEMPTS}), the payment is locked"
            return PaymentDeclined(text, decline_code=outcome["payment"]["response_code"], remaining_attempts=remaining)

        def answer(payment: dict[str, Any], now: dt.datetime, outcome: dict[str, Any] = outcome) -> dict[str, Any]:
            after = outcome["intent"]
            shown = {**public_view(after, now), "payment_id": payment["id"], "payment_status": payment["status"],
                     "redirect_url": redirect_url(after)}
            if payment["status"] == PaymentStatus.REQUIRES_ACTION:  # the payment's view, or its item when bound
                action = payment["next_action"] if "next_action" in payment else authentication.next_action(payment)
                shown |= {"next_action": action, "redirect_url": action["redirect_to_url"]["url"]}
            return shown

        def bind(payment: dict[str, Any], now: dt.datetime) -> list[dict[str, Any]]:
            # The confirm's own answer (not the payment's) is stored with the payment and the intent's change.
            if payment["status"] == PaymentStatus.FAILED:
                return ctx.binding(error=declined())
            return ctx.binding(answer(payment, now))

        try:
            payment = lifecycle.create(p, payment_req, capture=item["capture_method"] == "automatic", ctx=ctx,
                                       extra_actions=attempt, bind=bind if ctx.answer is not None else None)
        except transitions.AlsoFailed:
            continue  # the intent changed first (paid, declined, canceled, expired): read it again
        except PaymentDeclined:
            raise declined() from None
        return answer(payment, now)
    raise ConcurrentUpdate("the payment intent is being changed by other requests; retry")


def cancel(p: Principal, intent_id: str, ctx: RequestContext) -> dict[str, Any]:
    for _ in range(OPTIMISTIC_RETRIES):
        item = load(p, intent_id)
        now = clock.now()
        status = effective_status(item, now)
        if status == IntentStatus.CANCELED:
            return view(item, now)  # cancelling twice is harmless: same answer, no second event
        if status == IntentStatus.SUCCEEDED:
            raise IntentCompleted("cannot cancel completed payment intent", status=status)
        if status == IntentStatus.EXPIRED:
            raise IntentExpired("payment intent expired (valid for 1 hour); there is nothing to cancel")
        if status == IntentStatus.REQUIRES_ACTION:
            raise Conflict("the customer is authenticating this payment with their bank (3-D Secure); cancel once "
                           "it settles (the payment_intent.succeeded or payment_intent.payment_failed webhook)",
                           status=status)
        assert status in INTENT_TRANSITIONS["cancel"]
        updated, actions = change(
            p, ctx, item, {"status": IntentStatus.CANCELED, "canceled_at": clock.iso(now)},
            event_type="payment_intent.canceled", now=now,
            condition="#st IN (:created, :locked)", names={"#st": "status"},
            vals=dal.values(created=IntentStatus.CREATED, locked=IntentStatus.LOCKED))
        try:
            dal.transact(actions)
        except dal.ConditionFailed:
            continue
        return view(updated, now)
    raise ConcurrentUpdate("the payment intent is being changed by other requests; retry")


def expire(intent_id: str, ctx: RequestContext | None = None) -> bool:
    """The timer's step: created -> expired once expires_at has passed, with payment_intent.expired.

    Conditional on the status and the version read, so a confirm that lands first wins and the
    timer finds nothing to do; True if this call expired it, False if there was nothing to do,
    ConcurrentUpdate if it could not (the timer retries it).
    """
    for _ in range(OPTIMISTIC_RETRIES):
        item = _get(intent_id)
        now = clock.now()
        if item is None or item["status"] != IntentStatus.CREATED or clock.iso(now) < item["expires_at"]:
            return False
        _, actions = change(
            principal_of(item), ctx, item, {"status": IntentStatus.EXPIRED, "expired_at": clock.iso(now)},
            event_type="payment_intent.expired", now=now,
            condition="#st = :created AND expires_at <= :now", names={"#st": "status"},
            vals=dal.values(created=IntentStatus.CREATED, now=clock.iso(now)))
        try:
            dal.transact(actions)
            return True
        except dal.ConditionFailed:
            continue
    raise ConcurrentUpdate(f"could not expire {intent_id}: {OPTIMISTIC_RETRIES} write conflicts")


def advance(p: Principal, intent_id: str, seconds: int) -> dict[str, Any]:
    """Test mode: move this intent's expiry ``seconds`` closer and apply what falls due."""
    if p.livemode:
        raise NotFound("no such endpoint in live mode", param="path")
    item = load(p, intent_id)
    if item["status"] == IntentStatus.CREATED:
        shifted = clock.iso(clock.parse(item["expires_at"]) - dt.timedelta(seconds=seconds))
        try:
            dal.update(dal.payments_table(), item["pk"], item["sk"], "SET expires_at = :shifted",
                       names={"#st": "status"}, vals=dal.values(shifted=shifted, created=IntentStatus.CREATED),
                       condition="#st = :created")
        except dal.ConditionFailed:
            pass  # confirmed or canceled meanwhile
        expire(intent_id)
    return get(p, intent_id)
