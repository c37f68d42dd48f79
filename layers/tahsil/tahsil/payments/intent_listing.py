"""Listing a merchant's payment intents (``GET /v1/payment-intents``), newest first, by status."""

from __future__ import annotations

from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.errors import InvalidRequest, NotFound
from tahsil.kernel.principal import Principal
from tahsil.payments.intents import load, view
from tahsil.payments.models import IntentStatus
from tahsil.store import dal

_STATUS_FILTERS: dict[str, str] = {
    # An intent past its expiry is reported expired even before a timer flips it.
    IntentStatus.CREATED: "#s = :created AND expires_at > :now",
    IntentStatus.EXPIRED: "#s = :expired OR (#s = :created AND expires_at <= :now)",
}


def list_intents(p: Principal, *, limit: int, starting_after: str | None, status: str | None) -> dict[str, Any]:
    now = clock.now()
    table = dal.payments_table()
    start = None
    if starting_after:
        try:
            anchor = load(p, starting_after)
        except (InvalidRequest, NotFound):
            raise InvalidRequest("starting_after must be the id of one of your payment intents",
                                 param="starting_after") from None
        start = dal.resume_after(anchor)
    flt, names, vals = None, None, None
    if status:
        names = {"#s": "status"}
        if status in _STATUS_FILTERS:
            flt = _STATUS_FILTERS[status]
            vals = dal.values(created="created", expired="expired", now=clock.iso(now))
        else:
            flt, vals = "#s = :status", dal.values(status=status)
    items = dal.query_owner(table, f"{p.owner}#PI", start=start, filter_expression=flt, names=names, vals=vals,
                            page_size=min(100, limit + 1) if not flt else 100)
    page, has_more = dal.take(items, limit)
    linked = dal.get_many(table, [(f"PAY#{i['payment_id']}", "PAY") for i in page if i.get("payment_id")])
    return {
        "object": "list",
        "payment_intents": [view(i, now, linked.get((f"PAY#{i.get('payment_id')}", "PAY"))) for i in page],
        "has_more": has_more,
        "limit": limit,
        "next_starting_after": page[-1]["id"] if has_more else None,
    }
