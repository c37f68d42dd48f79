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
- deliveries: the window's deliveries per status, their attempts, and the latest webhook
  response (status code, latency, which event and endpoint), from the delivery rows
  (``tahsil.webhooks.deliveries``): at most ``MAX_DELIVERY_ROWS`` rows over ``MAX_ENDPOINTS``
  endpoints, ``limits.truncated`` when a bound is reached.

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
from tahsil.webhooks import deliveries, webhooks

MAX_WINDOW = dt.timedelta(days=31)
DEFAULT_WINDOW = dt.timedelta(hours=24)
MAX_DELIVERY_ROWS = 2_000
MAX_ENDPOINTS = 50


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


def _deliveries(p: Principal, since: dt.datetime, until: dt.datetime) -> tuple[dict[str, Any], bool]:
    rows: list[dict[str, Any]] = []
    truncated = False
    endpoints = deliveries.endpoints(p.owner)
    if len(endpoints) > MAX_ENDPOINTS:
        endpoints, truncated = sorted(endpoints, key=lambda e: e["created_at"], reverse=True)[:MAX_ENDPOINTS], True
    per_endpoint = []
    for endpoint in endpoints:
        left = MAX_DELIVERY_ROWS - len(rows)
        if left <= 0:
            truncated = True
            break
        found = deliveries.delivery_rows(p.owner, endpoint["id"], since=since, until=until, limit=left)
        truncated = truncated or len(found) >= left
        rows += found
        if found:
            per_endpoint.append({"endpoint_id": endpoint["id"], "url": endpoint["url"], "total": len(found),
                                 "delivered": sum(1 for r in found if r["status"] == "delivered"),
                                 "failed": sum(1 for r in found if r["status"] == "failed")})
    statuses = Counter(r["status"] for r in rows)
    latest = None
    tried = [r for r in rows if r.get("last_attempt_at") and r.get("attempts")]
    if tried:
        row = max(tried, key=lambda r: (r["last_attempt_at"], r["event_id"]))
        kept = row.get(webhooks.DELIVERED_ATTEMPT)
        attempt = kept if kept and int(kept["number"]) == int(row["attempts"]) else dal.get(
            dal.payments_table(), row["pk"], webhooks.attempt_sk(row["endpoint_id"], int(row["round"]), int(row["attempts"])))
        latest = {"status_code": row.get("last_status_code"), "error_class": row.get("last_error"),
                  "latency_ms": attempt.get("latency_ms") if attempt else None, "at": row["last_attempt_at"],
                  "event_id": row["event_id"], "event_type": row.get("event_type"), "endpoint_id": row["endpoint_id"],
                  "attempt_id": deliveries.attempt_id(row["event_id"], row["endpoint_id"], int(row["round"]),
                                                      int(row["attempts"]))}
    return {
        "total": len(rows), "delivered": statuses.get("delivered", 0), "failed": statuses.get("failed", 0),
        "retrying": statuses.get("retrying", 0), "pending": statuses.get("pending", 0),
        "attempts": sum(int(r.get("attempts") or 0) for r in rows),
        "success_rate": round(100 * statuses.get("delivered", 0) / len(rows), 1) if rows else None,
        "latest_response": latest, "endpoints": per_endpoint,
    }, truncated


def overview(p: Principal, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
             include_dashboard: bool = False) -> dict[str, Any]:
    since, until = _window(since, until)
    found, queries = _counters(p, since, until)
    usage = _requests(found, since, until, include_dashboard)
    delivered, deliveries_truncated = _deliveries(p, since, until)
    return {
        "object": "overview", "mode": p.mode,
        "window": {"from": clock.iso(since), "to": clock.iso(until), "complete_from": clock.iso(since),
                   "bucket_seconds": usage.pop("bucket_seconds"), "include_dashboard": include_dashboard},
        **usage,
        "deliveries": delivered,
        "limits": {"truncated": deliveries_truncated,
                   "max_delivery_rows": MAX_DELIVERY_ROWS, "log_rows_counted": usage["requests"]["total"],
                   "counter_items_read": len(found), "counter_queries": queries},
        "updated_at": clock.iso(clock.now()),
    }
