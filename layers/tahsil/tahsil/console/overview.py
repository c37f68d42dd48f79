"""``GET /v1/overview``: API usage and webhook deliveries over a time window.

Requests come from per-minute and per-hour counters (``tahsil.store.counters``, scope
``REQ#<merchant>#<mode>`` in ``RequestLogsTable``) that the request-log consumer adds to in the
same transaction as each log row, exactly once per request. A call reads at most three Queries
(the head minutes, the whole hours, the tail minutes of the window): its cost follows the window's
length (at most ~900 items for 31 days), never the number of requests. Numbers are to the minute:
the minutes holding ``from`` and ``to`` count whole.

- requests: total, succeeded (status < 400), client errors (4xx), server errors (5xx), rate limited
  (429); success and error rates are shares of the total;
- latency: the mean and the max (exact) and the 95th percentile, nearest rank over a histogram
  exact to 1 ms up to 100 ms, 10 ms up to 1 s, 100 ms up to 10 s (the bound of the rank's bucket,
  capped by the max: at most 10% above the exact figure, never below it);
- buckets: requests, errors, success rate, mean and p95 latency per minute (windows up to an hour),
  5 minutes (up to 3 h), hour (up to 2 days) or day;
- status codes: the count of each status, and per class (2xx, 3xx, 4xx, 5xx);
- signatures: requests whose signature passed or was denied, and the latest signed request
  (path, outcome, clock drift);
- deliveries: from the delivery counters (scope ``DLV#<merchant>#<mode>`` in PaymentsTable), which
  the delivery path adds to in the same transaction as each attempt's record, exactly once: the
  deliveries (rounds) whose first attempt fell in the window, how many were delivered, failed for
  good or are still retrying, their attempts, per endpoint, and the latest response among them
  (status code, latency, which event and endpoint). Kept per minute only (one counter write per
  delivery batch): one Query per 1 MB of minute items (a day is at most 1,440), whatever the number
  of deliveries; ``pending`` (queued, not attempted yet) is not counted and stays 0.

The console's own requests (a dashboard user's, ``user`` on the log row) are counted apart and
left out unless ``include_dashboard``: the overview is about the integration.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.errors import InvalidRequest
from tahsil.kernel.principal import Principal
from tahsil.store import counters, dal
from tahsil.webhooks import deliveries

MAX_WINDOW = dt.timedelta(days=31)
DEFAULT_WINDOW = dt.timedelta(hours=24)
MAX_DELIVERY_ROWS = 2_000  # kept in the response's limits for compatibility: nothing is read row by row


def p95(values: list[int]) -> int | None:
    """Nearest-rank 95th percentile: the smallest value with at least 95% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def bucket_size(window: dt.timedelta) -> dt.timedelta:
    if window <= dt.timedelta(hours=1):
        return dt.timedelta(minutes=1)
    if window <= dt.timedelta(hours=3):
        return dt.timedelta(minutes=5)
    if window <= dt.timedelta(days=2):
        return dt.timedelta(hours=1)
    return dt.timedelta(days=1)


def _floor(moment: dt.datetime, size: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    step = int(size.total_seconds())
    return epoch + dt.timedelta(seconds=int((moment - epoch).total_seconds()) // step * step)


def _window(since: dt.datetime | None, until: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    until = until or clock.now()
    until = until.replace(tzinfo=dt.UTC) if until.tzinfo is None else until.astimezone(dt.UTC)
    since = since or until - DEFAULT_WINDOW
    since = since.replace(tzinfo=dt.UTC) if since.tzinfo is None else since.astimezone(dt.UTC)
    if since >= until:
        raise InvalidRequest("from must be before to", param="from")
    if until - since > MAX_WINDOW:
        raise InvalidRequest(f"the window is at most {MAX_WINDOW.days} days", param="from")
    return since, until


def _counters(p: Principal, since: dt.datetime, until: dt.datetime) -> tuple[list[tuple[dt.datetime, dict[str, Any]]], int]:
    return counters.read(dal.request_logs_table(), counters.request_scope(p.merchant_id, p.mode), since, until)


def _sum(items: list[dict[str, Any]], prefixes: tuple[str, ...], name: str) -> int:
    return sum(int(i.get(f"{p}{name}", 0)) for i in items for p in prefixes)


def _statuses(items: list[dict[str, Any]], prefixes: tuple[str, ...]) -> Counter[int]:
    codes: Counter[int] = Counter()
    for p in prefixes:
        for status, n in counters.histogram(items, f"{p}s").items():
            codes[status] += n
    return codes


def _latency(items: list[dict[str, Any]], prefixes: tuple[str, ...]) -> tuple[float | None, int | None, int | None]:
    """Mean (exact), p95 (from the histogram: the upper bound of the rank's bucket, capped by the max), max (exact)."""
    total = _sum(items, prefixes, "n")
    hist: Counter[int] = Counter()
    for p in prefixes:
        hist.update(counters.histogram(items, f"{p}l"))
    highest = max((int(i[f"{p}mx"]) for i in items for p in prefixes if f"{p}mx" in i), default=None)
    if not total:
        return None, None, None
    q = counters.quantile(dict(hist), 0.95)
    if q is not None and highest is not None:
        q = min(q, highest)
    return round(_sum(items, prefixes, "ls") / total, 1), q, highest


def _requests(found: list[tuple[dt.datetime, dict[str, Any]]], since: dt.datetime, until: dt.datetime,
              include_dashboard: bool) -> dict[str, Any]:
    prefixes = ("a", "d") if include_dashboard else ("a",)
    items = [i for _, i in found]
    codes = _statuses(items, prefixes)
    total = sum(codes.values())
    ok = sum(n for s, n in codes.items() if s < 400)
    client = sum(n for s, n in codes.items() if 400 <= s < 500)
    server = sum(n for s, n in codes.items() if s >= 500)
    size = bucket_size(until - since)
    buckets: dict[dt.datetime, list[dict[str, Any]]] = {}
    moment = _floor(since, size)
    while moment < until:
        buckets[moment] = []
        moment += size
    for start, item in found:
        buckets.setdefault(_floor(start, size), []).append(item)
    series = []
    for moment in sorted(buckets):
        group = buckets[moment]
        group_codes = _statuses(group, prefixes)
        count = sum(group_codes.values())
        errors = sum(n for s, n in group_codes.items() if s >= 400)
        avg, p95_ms, _ = _latency(group, prefixes)
        series.append({"start": clock.iso(moment), "requests": count, "errors": errors,
                       "success_rate": round(100 * (count - errors) / count, 1) if count else None,
                       "avg_latency_ms": avg, "p95_latency_ms": p95_ms})
    classes = {f"{c}xx": sum(n for s, n in codes.items() if s // 100 == c) for c in (2, 3, 4, 5)}
    avg, p95_ms, highest = _latency(items, prefixes)
    signed = [i[f"{p}sig"] for i in items for p in prefixes if f"{p}sig" in i]
    latest_signed = max(signed, key=lambda s: s["sk"]) if signed else None
    return {
        "requests": {"total": total, "succeeded": ok, "client_errors": client, "server_errors": server,
                     "rate_limited": codes.get(429, 0),
                     "success_rate": round(100 * ok / total, 1) if total else None,
                     "error_rate": round(100 * (client + server) / total, 1) if total else None},
        "latency_ms": {"avg": avg, "p95": p95_ms, "max": highest},
        "bucket_seconds": int(size.total_seconds()),
        "buckets": series,
        "status_codes": [{"status": s, "count": n} for s, n in sorted(codes.items())],
        "status_classes": classes,
        "signatures": {
            "passed": _sum(items, prefixes, "gp"),
            "denied": _sum(items, prefixes, "gd"),
            "latest": {"request_id": latest_signed["request_id"], "path": latest_signed["path"],
                       "outcome": latest_signed["outcome"], "reason": latest_signed.get("reason"),
                       "drift_s": latest_signed.get("drift_s"), "at": latest_signed["at"]} if latest_signed else None,
        },
    }


def _deliveries(p: Principal, since: dt.datetime, until: dt.datetime) -> tuple[dict[str, Any], int, int]:
    """From the delivery counters: the deliveries (rounds) whose first attempt fell in the window, by outcome so
    far, their attempts, per endpoint, and the latest response among them. Answers the counter items and Queries read."""
    found, queries = counters.read_minutes(dal.payments_table(), counters.delivery_scope(p.merchant_id, p.mode), since,
                                           until)
    items = [i for _, i in found]

    def total(name: str) -> int:
        return sum(int(i.get(name, 0)) for i in items)

    started, delivered, failed = total("n"), total("dd"), total("df")
    per_endpoint = []
    ids = {name.split(".", 1)[1] for i in items for name in i if name.startswith("n.")}
    if ids:
        urls = {e["id"]: e["url"] for e in deliveries.endpoints(p.owner)}
        for endpoint_id in sorted(ids, key=lambda e: (-total(f"n.{e}"), e)):
            per_endpoint.append({"endpoint_id": endpoint_id, "url": urls.get(endpoint_id, ""),
                                 "total": total(f"n.{endpoint_id}"), "delivered": total(f"dd.{endpoint_id}"),
                                 "failed": total(f"df.{endpoint_id}")})
    latest = None
    responses = [i["lr"] for i in items if isinstance(i.get("lr"), dict)]
    if responses:
        last = max(responses, key=lambda r: (r["at"], r["event_id"]))
        latest = {"status_code": last.get("status_code"), "error_class": last.get("error_class"),
                  "latency_ms": last.get("latency_ms"), "at": last["at"], "event_id": last["event_id"],
                  "event_type": last.get("event_type"), "endpoint_id": last["endpoint_id"],
                  "attempt_id": deliveries.attempt_id(last["event_id"], last["endpoint_id"], int(last["round"]),
                                                      int(last["number"]))}
    return {
        "total": started, "delivered": delivered, "failed": failed,
        "retrying": max(0, started - delivered - failed), "pending": 0,
        "attempts": total("at"),
        "success_rate": round(100 * delivered / started, 1) if started else None,
        "latest_response": latest, "endpoints": per_endpoint,
    }, len(items), queries


def overview(p: Principal, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
             include_dashboard: bool = False) -> dict[str, Any]:
    since, until = _window(since, until)
    found, queries = _counters(p, since, until)
    usage = _requests(found, since, until, include_dashboard)
    delivered, delivery_items, delivery_queries = _deliveries(p, since, until)
    return {
        "object": "overview", "mode": p.mode,
        "window": {"from": clock.iso(since), "to": clock.iso(until), "complete_from": clock.iso(since),
                   "bucket_seconds": usage.pop("bucket_seconds"), "include_dashboard": include_dashboard},
        **usage,
        "deliveries": delivered,
        "limits": {"truncated": False,
                   "max_delivery_rows": MAX_DELIVERY_ROWS, "log_rows_counted": usage["requests"]["total"],
                   "counter_items_read": len(found) + delivery_items, "counter_queries": queries + delivery_queries},
        "updated_at": clock.iso(clock.now()),
    }
