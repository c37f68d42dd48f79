"""Reading the outbox: an event row by id, and a merchant's events in order.

Rows (PaymentsTable, written by ``tahsil.kernel.events`` in the transaction of the change they describe):
  EVTS#<merchant>#<mode> / <evt>   the event: ``deliveries_total = 0`` when nobody subscribes, ``dlv_failed``
                                   (a string set) the endpoints whose delivery failed for good. Rows written
                                   before this layout: EVT#<evt> / EVT (listed through ``by_owner``, after the
                                   partition's rows: all older)
"""

from __future__ import annotations

import collections.abc
import datetime as dt
import itertools
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.events import delivery_partition, event_id_bound, event_partition
from tahsil.store import dal


def find_event(merchant_id: str | None, mode: str | None, event_id: str) -> dict[str, Any] | None:
    """An event row: a GetItem in the merchant's and mode's partition (another's id is simply not there); a
    row of the older layout (``EVT#<id>`` / ``EVT``) only when that misses, and only if it is theirs. Without
    a merchant and mode (a message queued before this layout), the older key alone."""
    table = dal.payments_table()
    if merchant_id and mode:
        # an event's payload never changes: an eventually consistent read, then a strong one if it misses
        key = (event_partition(f"{merchant_id}#{mode}"), event_id)
        item = dal.get(table, *key, consistent=False) or dal.get(table, *key)
        if item is not None:
            return item
    legacy = dal.get(table, delivery_partition(event_id), "EVT")
    if legacy is None or (merchant_id and mode and (legacy["merchant_id"] != merchant_id or legacy["mode"] != mode)):
        return None
    return legacy


def owner_events(owner: str, *, newest_first: bool = True, after: dict[str, Any] | None = None,
                 since: dt.datetime | None = None, before: dt.datetime | None = None,
                 filter_expression: str | None = None, names: dict[str, str] | None = None,
                 vals: dict[str, Any] | None = None, page_size: int = 100) -> collections.abc.Iterator[dict[str, Any]]:
    """A merchant's events in one mode (``owner``: ``<merchant>#<mode>``), newest first (or oldest), lazily.

    Created at or after ``since`` and before ``before``; after the event row ``after`` (a cursor). The
    partition ``EVTS#<owner>`` is read by sort key (event ids sort by time). Rows of the older layout are all
    older than any in the partition: newest first, they follow it (through the ``by_owner`` index, read
    only once the partition is exhausted); oldest first, they come before it.
    """
    table = dal.payments_table()
    legacy_after = after is not None and after["sk"] == "EVT"

    def current() -> collections.abc.Iterator[dict[str, Any]]:
        if newest_first and legacy_after:
            return  # the cursor is older than every row of the partition
        start = None if legacy_after or after is None else after["sk"]
        while True:
            rows, start = dal.query_page(table, event_partition(owner), newest_first=newest_first,
                                         sk_from=event_id_bound(since) if since else None,
                                         sk_to=event_id_bound(before) if before else None, start_sk=start,
                                         filter_expression=filter_expression, names=names, vals=vals,
                                         page_size=page_size)
            yield from rows
            if start is None:
                return

    def older() -> collections.abc.Iterator[dict[str, Any]]:
        if not newest_first and after is not None and not legacy_after:
            return  # the cursor is newer than every row of the older layout
        yield from dal.query_owner(table, f"{owner}#EVT", newest_first=newest_first,
                                   start=dal.resume_after(after) if legacy_after and after else None,
                                   sk_from=clock.sortable(since) if since else None,
                                   sk_to=clock.sortable(before) if before else None,
                                   filter_expression=filter_expression, names=names, vals=vals, page_size=page_size)

    return itertools.chain(current(), older()) if newest_first else itertools.chain(older(), current())
