"""Time-bucket counters: per scope, per minute and per hour, kept with atomic ADD.

Layout (in the table of the rows they summarise, with the same ``ttl``):

    CNT#<scope>#m / <YYYY-MM-DDTHH:MM>   one item per minute that saw a row
    CNT#<scope>#h / <YYYY-MM-DDTHH>      one item per hour

Each item holds numeric attributes named by the caller (``n``, ``s200``, ``l190`` ...), each
updated with ``ADD``, and ``ttl`` (set once). A reader answers a window with at most three
Queries (head minutes, whole hours, tail minutes): its cost follows the window's length, never
the number of rows.

Exactly once: ``record`` writes each summarised row with ``attribute_not_exists`` in the SAME
transaction as the ADDs that count it. A row that is already there (a redelivered message) cancels
the transaction; it is dropped from the batch and the rest is written again, so a row is counted
if and only if it was written, and never twice. A transaction conflict on a hot counter item is
retried with backoff; what still cannot be written is returned to the caller (to retry later).

Latency histogram: ``latency_bucket`` maps milliseconds to the upper bound of its bucket: exact
to 1 ms up to 100 ms, 10 ms up to 1 s, 100 ms up to 10 s, 1 s beyond (at most 10% above the
true value, never below it). ``quantile`` answers nearest-rank quantiles from it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections.abc import Iterable
from typing import Any

from tahsil.store import dal

MINUTE, HOUR = "m", "h"
MAX_ACTIONS = 100  # TransactWriteItems' limit
CONFLICT_RETRIES = 6


def minute_key(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")


def hour_key(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H")


def parse_key(sk: str) -> dt.datetime:
    fmt = "%Y-%m-%dT%H:%M" if len(sk) > 13 else "%Y-%m-%dT%H"
    return dt.datetime.strptime(sk, fmt).replace(tzinfo=dt.UTC)


def partition(scope: str, resolution: str) -> str:
    return f"CNT#{scope}#{resolution}"


def request_scope(merchant_id: str, mode: str) -> str:
    """Requests of a merchant's mode (written by ``tahsil.api.requestlog``, read by ``tahsil.console.overview``)."""
    return f"REQ#{merchant_id}#{mode}"


def latency_bucket(ms: int) -> int:
    ms = max(0, int(ms))
    for limit, step in ((100, 1), (1_000, 10), (10_000, 100)):
        if ms <= limit:
            return math.ceil(ms / step) * step
    return math.ceil(ms / 1_000) * 1_000


def quantile(histogram: dict[int, int], q: float) -> int | None:
    """Nearest rank over a histogram {bucket upper bound: count}: the bucket holding that rank."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= rank:
            return bound
    return max(histogram)


def add_action(table: str, scope: str, resolution: str, sk: str, counts: dict[str, int], ttl: int) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(counts)} | {"#ttl": "ttl"}
    vals = dal.values(**{f"c{i}": value for i, value in enumerate(counts.values())}, ttl=ttl)
    expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counts))) + " SET #ttl = if_not_exists(#ttl, :ttl)"
    return dal.update_action(table, partition(scope, resolution), sk, expression, condition=None, names=names, vals=vals)


def _merge(into: dict[tuple[str, str, str], dict[str, int]], key: tuple[str, str, str], counts: dict[str, int]) -> None:
    target = into.setdefault(key, {})
    for name, value in counts.items():
        target[name] = target.get(name, 0) + value


def record(table: str, rows: list[tuple[dict[str, Any], str, dt.datetime, dict[str, int]]]) -> list[dict[str, Any]]:
    """Write rows and count them, exactly once. ``rows``: (item, scope, moment, counts).

    Returns the items that were NOT written (conflicts that outlasted the retries); rows that were
    already there are neither written nor counted again, and are not returned.
    """
    left: list[dict[str, Any]] = []
    chunk: list[tuple[dict[str, Any], str, dt.datetime, dict[str, int]]] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if (row[0]["pk"], row[0]["sk"]) in seen:
            continue  # the same message twice in one batch: one write, one count
        seen.add((row[0]["pk"], row[0]["sk"]))
        chunk.append(row)
        if len(chunk) * 3 >= MAX_ACTIONS - 3:
            left += _record_chunk(table, chunk)
            chunk = []
    if chunk:
        left += _record_chunk(table, chunk)
    return left


def _record_chunk(table: str, rows: list[tuple[dict[str, Any], str, dt.datetime, dict[str, int]]]) -> list[dict[str, Any]]:
    pending = list(rows)
    conflicts = 0
    while pending:
        sums: dict[tuple[str, str, str], dict[str, int]] = {}
        expires: dict[tuple[str, str, str], int] = {}
        for item, scope, moment, counts in pending:
            for key in ((scope, MINUTE, minute_key(moment)), (scope, HOUR, hour_key(moment))):
                _merge(sums, key, counts)
                expires[key] = max(expires.get(key, 0), int(item["ttl"]))
        actions = [dal.put_action(table, item, condition="attribute_not_exists(pk)") for item, *_ in pending]
        actions += [add_action(table, scope, res, sk, counts, expires[(scope, res, sk)])
                    for (scope, res, sk), counts in sums.items()]
        try:
            dal.transact(actions)
            return []
        except dal.ConditionFailed as exc:
            if exc.index is not None and exc.index < len(pending):
                pending.pop(exc.index)  # already written and counted: a redelivery
                continue
            conflicts += 1
            if conflicts > CONFLICT_RETRIES:
                return [item for item, *_ in pending]
            time.sleep(random.uniform(0, 0.02 * 2 ** conflicts))  # noqa: S311 - jitter, not a secret
    return []


def read(table: str, scope: str, since: dt.datetime, until: dt.datetime) -> tuple[list[tuple[dt.datetime, dict[str, Any]]], int]:
    """The counter items covering [since, until] to the minute: minutes at the edges, whole hours between.

    Returns [(bucket start, item)] and the number of Query calls made.
    """
    first_hour = since.replace(minute=0, second=0, microsecond=0)
    if first_hour < since.replace(second=0, microsecond=0):
        first_hour += dt.timedelta(hours=1)
    last_hour = until.replace(minute=0, second=0, microsecond=0)
    spans: list[tuple[str, str, str]] = []
    if last_hour - first_hour >= dt.timedelta(hours=2):
        spans.append((MINUTE, minute_key(since), minute_key(first_hour - dt.timedelta(minutes=1))))
        spans.append((HOUR, hour_key(first_hour), hour_key(last_hour - dt.timedelta(hours=1))))
        spans.append((MINUTE, minute_key(last_hour), minute_key(until)))
    else:
        spans.append((MINUTE, minute_key(since), minute_key(until)))
    found: list[tuple[dt.datetime, dict[str, Any]]] = []
    calls = 0
    for resolution, low, high in spans:
        if low > high:
            continue
        last: str | None = None
        while True:
            items, last = dal.query_page(table, partition(scope, resolution), newest_first=False, sk_from=low, sk_to=high,
                                         start_sk=last, page_size=1_000)
            calls += 1
            found += [(parse_key(i["sk"]), i) for i in items]
            if last is None:
                break
    return found, calls


def histogram(items: Iterable[dict[str, Any]], prefix: str) -> dict[int, int]:
    """Sum the ``<prefix><bound>`` attributes of items into {bound: count}."""
    out: dict[int, int] = {}
    for item in items:
        for name, value in item.items():
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                out[int(name[len(prefix):])] = out.get(int(name[len(prefix):]), 0) + int(value)
    return out
