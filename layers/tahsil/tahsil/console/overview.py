"""``GET /v1/overview``: API usage and webhook deliveries over a time window, computed from the records.

Nothing here is a counter that could drift from what happened: every number is computed, per
call, from the request logs (``RequestLogsTable``, ``LOG#<merchant>#<mode>``, one row per request,
newest first) and from the webhook delivery rows (``tahsil.webhooks.deliveries``).

- requests: total, succeeded (status < 400), client errors (4xx), server errors (5xx), rate limited
  (429); success and error rates are shares of the total;
- latency: the mean and the 95th percentile (nearest rank over the window's actual latencies);
- buckets: requests, errors, success rate, mean and p95 latency per minute (windows up to an hour),
  5 minutes (up to 3 h), hour (up to 2 days) or day;
- status codes: the count of each status, and per class (2xx, 3xx, 4xx, 5xx);
- signatures: requests whose signature passed or was denied, and the latest signed request
  (path, outcome, clock drift);
- deliveries: the window's deliveries per status, their attempts, and the latest webhook
  response (status code, latency, which event and endpoint).

The console's own requests (a dashboard user's, ``user`` on the log row) are left out unless
``include_dashboard``: the overview is about the integration.

Bounded work: a call reads at most ``MAX_LOG_ROWS`` request-log rows (newest first, pages of 1,000)
and ``MAX_DELIVERY_ROWS`` delivery rows over at most ``MAX_ENDPOINTS`` endpoints. When a bound is
reached the answer says so (``limits.truncated``) and ``window.complete_from`` gives the time from
which the numbers are complete.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

from tahsil.kernel import clock
from tahsil.kernel.errors import InvalidRequest
from tahsil.kernel.principal import Principal
from tahsil.store import dal
from tahsil.webhooks import deliveries, webhooks

MAX_WINDOW = dt.timedelta(days=31)
DEFAULT_WINDOW = dt.timedelta(hours=24)
MAX_LOG_ROWS = 10_000
LOG_PAGE = 1_000
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


def _received(item: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(item["received_at"].replace("Z", "+00:00"))


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


def _logs(p: Principal, since: dt.datetime, until: dt.datetime, include_dashboard: bool) -> tuple[list[dict[str, Any]], bool]:
    rows: list[dict[str, Any]] = []
    last: str | None = None
    read = 0
    while True:
        items, last = dal.query_page(dal.request_logs_table(), f"LOG#{p.merchant_id}#{p.mode}", newest_first=True,
                                     sk_from=clock.sortable(since), sk_to=clock.sortable(until) + "~", start_sk=last,
                                     page_size=min(LOG_PAGE, MAX_LOG_ROWS - read))
        read += len(items)
        rows += [i for i in items if include_dashboard or not i.get("user")]
        if last is None:
            return rows, False
        if read >= MAX_LOG_ROWS:
            return rows, True


def _requests(rows: list[dict[str, Any]], since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    statuses = [int(r["status"]) for r in rows]
    latencies = [int(r["latency_ms"]) for r in rows]
    total = len(rows)
    ok = sum(1 for s in statuses if s < 400)
    client = sum(1 for s in statuses if 400 <= s < 500)
    server = sum(1 for s in statuses if s >= 500)
    size = bucket_size(until - since)
    buckets: dict[dt.datetime, list[dict[str, Any]]] = {}
    start = _floor(since, size)
    moment = start
    while moment < until:
        buckets[moment] = []
        moment += size
    for r in rows:
        buckets.setdefault(_floor(_received(r), size), []).append(r)
    series = []
    for moment in sorted(buckets):
        group = buckets[moment]
        lat = [int(r["latency_ms"]) for r in group]
        errors = sum(1 for r in group if int(r["status"]) >= 400)
        series.append({"start": clock.iso(moment), "requests": len(group), "errors": errors,
                       "success_rate": round(100 * (len(group) - errors) / len(group), 1) if group else None,
                       "avg_latency_ms": _mean(lat), "p95_latency_ms": p95(lat)})
    codes = Counter(statuses)
    classes = {f"{c}xx": sum(n for s, n in codes.items() if s // 100 == c) for c in (2, 3, 4, 5)}
    signed = [r for r in rows if (r.get("signature") or {}).get("outcome") in ("passed", "denied")]
    latest_signed = max(signed, key=lambda r: r["sk"]) if signed else None
    return {
        "requests": {"total": total, "succeeded": ok, "client_errors": client, "server_errors": server,
                     "rate_limited": codes.get(429, 0),
                     "success_rate": round(100 * ok / total, 1) if total else None,
                     "error_rate": round(100 * (client + server) / total, 1) if total else None},
        "latency_ms": {"avg": _mean(latencies), "p95": p95(latencies), "max": max(latencies) if latencies else None},
        "bucket_seconds": int(size.total_seconds()),
        "buckets": series,
        "status_codes": [{"status": s, "count": n} for s, n in sorted(codes.items())],
        "status_classes": classes,
        "signatures": {
            "passed": sum(1 for r in signed if r["signature"]["outcome"] == "passed"),
            "denied": sum(1 for r in signed if r["signature"]["outcome"] == "denied"),
            "latest": {"request_id": latest_signed["request_id"], "path": latest_signed["path"],
                       "outcome": latest_signed["signature"]["outcome"], "reason": latest_signed["signature"].get("reason"),
                       "drift_s": latest_signed["signature"].get("drift_s"),
                       "at": clock.iso(_received(latest_signed))} if latest_signed else None,
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
    rows, logs_truncated = _logs(p, since, until, include_dashboard)
    usage = _requests(rows, since, until)
    delivered, deliveries_truncated = _deliveries(p, since, until)
    complete_from = since
    if logs_truncated and rows:
        complete_from = min(_received(r) for r in rows)
    return {
        "object": "overview", "mode": p.mode,
        "window": {"from": clock.iso(since), "to": clock.iso(until), "complete_from": clock.iso(complete_from),
                   "bucket_seconds": usage.pop("bucket_seconds"), "include_dashboard": include_dashboard},
        **usage,
        "deliveries": delivered,
        "limits": {"truncated": logs_truncated or deliveries_truncated, "max_log_rows": MAX_LOG_ROWS,
                   "max_delivery_rows": MAX_DELIVERY_ROWS, "log_rows_counted": len(rows)},
        "updated_at": clock.iso(clock.now()),
    }
