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
The counts of a batch are merged per counter item: one update per minute item and one per hour
item, whatever the number of rows.

Highs (the largest latency, the latest signed request): an attribute that keeps the value of
highest rank, in the same update as the ADDs, so it costs no write of its own. DynamoDB has no
``max()``, so the update takes one of two forms, and exactly one of their conditions holds:
``raise`` (``SET h = :v`` if ``h`` is absent or ranks below ``:v``) or ``keep`` (nothing set,
if ``h`` ranks at or above ``:v``). The form is picked from what this container last knew of the
item (a new item, or a rank above the last one seen: ``raise``); a wrong guess fails its
condition, the transaction returns the item as found (``ReturnValuesOnConditionCheckFailure``),
and the retry takes the right form. A high is raised only by rows that are counted.

Webhook deliveries (scope ``DLV#<merchant>#<mode>``, PaymentsTable) are kept per minute only:
``commit`` writes a batch of delivery records in one transaction with one ADD per minute item they
touch, each record conditional, so a record is counted if and only if it was written (a transaction
doubles every item, so an hour item would cost as much again per batch). ``read_minutes`` sums a
window's minute items (a day is at most 1,440 items, one Query per MB).

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
from dataclasses import dataclass, field
from typing import Any

from tahsil.store import dal

MINUTE, HOUR = "m", "h"
MAX_ACTIONS = 100  # TransactWriteItems' limit
CONFLICT_RETRIES = 6
# Jitter from the OS: execution environments restored from one SnapStart snapshot share the ``random`` module's
# state, and would retry in step; os.urandom differs in each.
_JITTER = random.SystemRandom()


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


# A high: (value, the field of a map value that ranks it, or None when the value is its own rank).
High = tuple[Any, str | None]
Row = tuple[dict[str, Any], str, dt.datetime, dict[str, int], dict[str, High]]  # item, scope, moment, counts, highs
Key = tuple[str, str, str]  # scope, resolution, sort key of a counter item

_known: dict[tuple[str, str, str], Any] = {}  # (pk, sk, high) -> a rank the stored high is known to reach
FORM_RETRIES = 8


def _rank(high: High) -> Any:
    value, field = high
    return value[field] if field else value


def add_action(table: str, scope: str, resolution: str, sk: str, counts: dict[str, int], ttl: int,
               highs: dict[str, High] | None = None, raise_: dict[str, bool] | None = None) -> dict[str, Any]:
    """The counter item's update: ADD the counts; for each high, the ``raise`` or ``keep`` form."""
    names = {f"#c{i}": name for i, name in enumerate(counts)} | {"#ttl": "ttl"}
    vals = dal.values(**{f"c{i}": value for i, value in enumerate(counts.values())}, ttl=ttl)
    sets, conditions = ["#ttl = if_not_exists(#ttl, :ttl)"], []
    for i, (name, high) in enumerate((highs or {}).items()):
        names[f"#h{i}"] = name
        path = f"#h{i}"
        if high[1]:
            names[f"#f{i}"] = high[1]
            path += f".#f{i}"
        vals.update(dal.values(**{f"r{i}": _rank(high)}))
        if (raise_ or {}).get(name, True):
            sets.append(f"#h{i} = :h{i}")
            vals.update(dal.values(**{f"h{i}": high[0]}))
            conditions.append(f"(attribute_not_exists(#h{i}) OR {path} < :r{i})")
        else:
            conditions.append(f"{path} >= :r{i}")
    expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counts))) + " SET " + ", ".join(sets)
    action = dal.update_action(table, partition(scope, resolution), sk, expression,
                               condition=" AND ".join(conditions) or None, names=names, vals=vals)
    if conditions:
        action["Update"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return action


def _merge(into: dict[Key, dict[str, int]], key: Key, counts: dict[str, int]) -> None:
    target = into.setdefault(key, {})
    for name, value in counts.items():
        target[name] = target.get(name, 0) + value


def _merge_highs(into: dict[Key, dict[str, High]], key: Key, highs: dict[str, High]) -> None:
    target = into.setdefault(key, {})
    for name, high in highs.items():
        if name not in target or _rank(high) > _rank(target[name]):
            target[name] = high


def _guess(pk: str, sk: str, highs: dict[str, High]) -> dict[str, bool]:
    """``raise`` unless this container knows the stored high already ranks at or above ours."""
    out = {}
    for name, high in highs.items():
        known = _known.get((pk, sk, name))
        out[name] = known is None or _rank(high) > known
    return out


def _learn(pk: str, sk: str, highs: dict[str, High]) -> None:
    if len(_known) > 50_000:
        _known.clear()
    for name, high in highs.items():
        known = _known.get((pk, sk, name))
        _known[(pk, sk, name)] = _rank(high) if known is None else max(known, _rank(high))


def record(table: str, rows: list[Row]) -> list[dict[str, Any]]:
    """Write rows and count them, exactly once. ``rows``: (item, scope, moment, counts, highs).

    Returns the items that were NOT written (conflicts that outlasted the retries); rows that were
    already there are neither written nor counted again, and are not returned.
    """
    left: list[dict[str, Any]] = []
    chunk: list[Row] = []
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


def _record_chunk(table: str, rows: list[Row]) -> list[dict[str, Any]]:
    pending = list(rows)
    conflicts = wrong_forms = 0
    forms: dict[Key, dict[str, bool]] = {}  # corrected from what a failed condition found
    while pending:
        sums: dict[Key, dict[str, int]] = {}
        highs: dict[Key, dict[str, High]] = {}
        expires: dict[Key, int] = {}
        for item, scope, moment, counts, row_highs in pending:
            for key in ((scope, MINUTE, minute_key(moment)), (scope, HOUR, hour_key(moment))):
                _merge(sums, key, counts)
                _merge_highs(highs, key, row_highs)
                expires[key] = max(expires.get(key, 0), int(item["ttl"]))
        keys = list(sums)
        chosen = {key: {**_guess(partition(key[0], key[1]), key[2], highs[key]), **forms.get(key, {})} for key in keys}
        actions = [dal.put_action(table, item, condition="attribute_not_exists(pk)") for item, *_ in pending]
        actions += [add_action(table, scope, res, sk, sums[(scope, res, sk)], expires[(scope, res, sk)],
                               highs[(scope, res, sk)], chosen[(scope, res, sk)]) for scope, res, sk in keys]
        try:
            dal.transact(actions)
            for scope, res, sk in keys:
                _learn(partition(scope, res), sk, highs[(scope, res, sk)])
            return []
        except dal.ConditionFailed as exc:
            if exc.index is not None and exc.index < len(pending):
                pending.pop(exc.index)  # already written and counted: a redelivery
                continue
            if exc.index is not None and wrong_forms < FORM_RETRIES:  # a high's form was wrong: take the other
                wrong_forms += 1
                for index, found in exc.failed.items():
                    key = keys[index - len(pending)]
                    stored = found or {}
                    forms[key] = {name: name not in stored or _rank((stored[name], high[1])) < _rank(high)
                                  for name, high in highs[key].items()}
                continue
            conflicts += 1
            if conflicts > CONFLICT_RETRIES:
                return [item for item, *_ in pending]
            time.sleep(_JITTER.uniform(0, 0.02 * 2 ** conflicts))
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


# ---------------------------------------------------------------- counted writes (webhook deliveries)


def delivery_scope(merchant_id: str, mode: str) -> str:
    """Webhook deliveries of a merchant's mode (written by ``tahsil.webhooks``, read by the overview and go-live)."""
    return f"DLV#{merchant_id}#{mode}"


@dataclass
class Unit:
    """Some writes and what they count: the writes' conditions decide whether the counts are added.

    ``latest``: map attributes SET on the unit's counter items (e.g. the latest response), the newest
    (by their ``at``) winning when two units of one transaction touch the same item.
    """

    actions: list[dict[str, Any]]
    scope: str | None = None
    moment: dt.datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    ttl: int = 0


def _counted_action(table: str, scope: str, resolution: str, sk: str, counts: dict[str, int],
                    latest: dict[str, dict[str, Any]], ttl: int) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(counts)} | {f"#l{i}": name for i, name in enumerate(latest)}
    vals = dal.values(**{f"c{i}": value for i, value in enumerate(counts.values())},
                      **{f"l{i}": value for i, value in enumerate(latest.values())}, ttl=ttl)
    expression = ("ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counts))) + " ") if counts else ""
    expression += "SET #ttl = if_not_exists(#ttl, :ttl)" + "".join(f", #l{i} = :l{i}" for i in range(len(latest)))
    return dal.update_action(table, partition(scope, resolution), sk, expression, condition=None,
                             names=names | {"#ttl": "ttl"}, vals=vals)


def commit(table: str, units: list[Unit], *, resolutions: tuple[str, ...] = (MINUTE, HOUR)) -> list[bool | None]:
    """Write units and add their counts, exactly once, in as few transactions as fit.

    One transaction holds every unit's writes and ONE ADD per counter item the units touch (per
    resolution asked for), so a batch of deliveries costs one counter write per minute, not one per
    delivery. A unit whose
    condition fails (already written: a redelivered message, another worker first) is dropped and the
    rest written again: it is neither written nor counted. Answers per unit: True written and counted,
    False dropped, None not written (transaction conflicts outlasted the retries: the caller retries).
    """
    out: list[bool | None] = [None] * len(units)
    chunk: list[int] = []
    size = 0
    touched: set[str] = set()  # a transaction may touch an item once
    for i, unit in enumerate(units):
        keys = {_item_key(a) for a in unit.actions}
        if chunk and (size + len(unit.actions) + 2 > MAX_ACTIONS - 2 or keys & touched):
            _commit_chunk(table, units, chunk, out, resolutions)
            chunk, size, touched = [], 0, set()
        chunk.append(i)
        size += len(unit.actions) + 2
        touched |= keys
    if chunk:
        _commit_chunk(table, units, chunk, out, resolutions)
    return out


def _item_key(action: dict[str, Any]) -> str:
    body = next(iter(action.values()))
    key = body.get("Key") or {k: body["Item"][k] for k in ("pk", "sk", "id") if k in body["Item"]}
    return body["TableName"] + repr(sorted((k, repr(v)) for k, v in key.items()))


def _commit_chunk(table: str, units: list[Unit], chunk: list[int], out: list[bool | None],
                  resolutions: tuple[str, ...]) -> None:
    keys = {MINUTE: minute_key, HOUR: hour_key}
    pending = list(chunk)
    conflicts = 0
    while pending:
        sums: dict[tuple[str, str, str], dict[str, int]] = {}
        latest: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        expires: dict[tuple[str, str, str], int] = {}
        owners: list[int] = []
        actions: list[dict[str, Any]] = []
        for i in pending:
            unit = units[i]
            actions += unit.actions
            owners += [i] * len(unit.actions)
            if unit.scope is None or unit.moment is None or not (unit.counts or unit.latest):
                continue
            for key in [(unit.scope, res, keys[res](unit.moment)) for res in resolutions]:
                _merge(sums, key, unit.counts)
                kept = latest.setdefault(key, {})
                for name, value in unit.latest.items():
                    if name not in kept or str(value.get("at", "")) >= str(kept[name].get("at", "")):
                        kept[name] = value
                expires[key] = max(expires.get(key, 0), unit.ttl)
        actions += [_counted_action(table, scope, res, sk, sums[(scope, res, sk)], latest.get((scope, res, sk), {}),
                                    expires[(scope, res, sk)]) for (scope, res, sk) in sums]
        try:
            dal.transact(actions)
        except dal.ConditionFailed as exc:
            if exc.index is not None and exc.index < len(owners):
                dropped = owners[exc.index]
                out[dropped] = False
                pending.remove(dropped)
                continue
            conflicts += 1
            if conflicts > CONFLICT_RETRIES:
                return
            time.sleep(_JITTER.uniform(0, 0.02 * 2 ** conflicts))
            continue
        for i in pending:
            out[i] = True
        return


def read_minutes(table: str, scope: str, since: dt.datetime,
                 until: dt.datetime) -> tuple[list[tuple[dt.datetime, dict[str, Any]]], int]:
    """The minute items of [since, until] (for scopes kept per minute only): one Query per 1 MB of items.

    Returns [(minute, item)] and the number of Query calls made: the cost follows the window's length
    (at most one item per minute that saw activity), never the number of rows counted.
    """
    found: list[tuple[dt.datetime, dict[str, Any]]] = []
    calls = 0
    last: str | None = None
    while True:
        items, last = dal.query_page(table, partition(scope, MINUTE), newest_first=False, sk_from=minute_key(since),
                                     sk_to=minute_key(until), start_sk=last, page_size=1_000)
        calls += 1
        found += [(parse_key(i["sk"]), i) for i in items]
        if last is None:
            return found, calls


def latest_with(table: str, scope: str, attribute: str, since: dt.datetime, *, max_pages: int = 5) -> dict[str, Any] | None:
    """The newest minute item since ``since`` that holds ``attribute``, reading at most ``max_pages`` pages."""
    last: str | None = None
    for _ in range(max_pages):
        items, last = dal.query_page(table, partition(scope, MINUTE), newest_first=True, sk_from=minute_key(since),
                                     start_sk=last, filter_expression="attribute_exists(#a)", names={"#a": attribute},
                                     page_size=1_000)
        if items:
            return items[0]
        if last is None:
            return None
    return None
