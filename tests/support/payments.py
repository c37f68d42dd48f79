"""Payments through their handlers (events/ samples, moto in-process): what payment tests share."""

from __future__ import annotations

from typing import Any

from tests.support.lambdas import invoke, load_event

CARD = {"number": "4242424242424242", "cardholder_name": "John Doe", "exp_month": 12, "exp_year": 2030, "cvv": "123"}


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"amount": 9999, "currency": "USD", "card": dict(CARD), "description": "Order #1"}
    card = over.pop("card", None)
    if card:
        base["card"].update(card)
    base.update(over)
    return base


def authorize(key: str, payload: dict[str, Any] | str | None = None, *, idem: str | None = None, sale: bool = False):
    headers = {"Idempotency-Key": idem} if idem else None
    name = "payments-sale" if sale else "payments-authorize"
    event = load_event(name, key=key, body=payload if payload is not None else body(), headers=headers)
    if idem is None:
        event["headers"].pop("Idempotency-Key", None)
        event["multiValueHeaders"].pop("Idempotency-Key", None)
    return invoke("SalePaymentFunction" if sale else "AuthorizePaymentFunction", event)


def act(action: str, key: str, payment_id: str, payload: dict[str, Any] | None = None):
    fn = {"capture": "CapturePaymentFunction", "void": "VoidPaymentFunction", "refund": "RefundPaymentFunction"}[action]
    return invoke(fn, load_event(f"payments-{action}", key=key, path_id=payment_id, body=payload or {}))


def get(key: str, payment_id: str):
    return invoke("GetPaymentFunction", load_event("payments-get", key=key, path_id=payment_id))


def table_items() -> list[dict[str, Any]]:
    from tahsil.store import dal

    client = dal._ddb()
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=dal.payments_table()):
        items.extend(dal.load(i) for i in page["Items"])
    return items


def run_wheel(buckets: list[int]) -> list[dict[str, Any]]:
    """What each bucket's execution does once its wait is over: Sweep until done (statemachines/expiry.asl.json)."""
    from tahsil.payments import expiry

    pages = []
    for bucket in sorted(buckets):
        state = expiry.execution_input(bucket)
        while not state["done"]:
            state = expiry.sweep(state)
            pages.append(state)
    return pages
