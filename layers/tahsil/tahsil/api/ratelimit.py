"""Rate limits (seed 002): fixed windows counted atomically in DynamoDB, never in process memory.

| class    | applies to                                                   | default             | counted per |
|----------|--------------------------------------------------------------|---------------------|-------------|
| payments | POST /v1/payments/..., POST /v1/payment-intents/...          | 20/s and 10,000/h   | merchant    |
| queries  | GET /v1/payments..., /v1/transactions..., /v1/payment-intents | 100/s               | merchant    |
| public   | /public/... and /checkout/... (hosted checkout)              | 50/s                | source IP   |
| notifications | processor notifications (/connectors/adyen/...)         | 500/s               | source IP   |
| other    | every other /v1 route (keys, logs, webhooks, events...)      | 100/s               | merchant    |

Every request that reaches the limiter counts (refused ones and idempotent replays too, as
Stripe counts them); it is admitted when every window's count is within its limit. Test and
live mode share a merchant's windows. Each request writes ONE counter item (1 WRU), and both
windows stay exact:

* A class with only a per-second limit: ``RL#<subject>#<class>#s#<epoch second>``, bumped with
  one unconditional ``UpdateItem ADD n :1`` that returns the new count; it expires by TTL.
* A class with a per-hour limit too (payments): one item per hour,
  ``RL#<subject>#<class>#h#<epoch hour>``, holding the hour's count ``n`` AND the current
  second's window: ``s`` (the epoch second) and ``c`` (its count). A request makes one
  conditional UpdateItem (returning the new item) in one of two forms:
    - same second: ``ADD n :1, c :1`` if ``s = :now``;
    - next second: ``ADD n :1 SET s = :now, c = 1`` if ``s`` is absent or ``s < :now``.
  Exactly one condition holds, so the counts are exact however many containers write. Each
  container remembers the ``s`` it last saw on the item and picks the form from it: right
  every time but on the first request of a second that another container has already started.
  Then the failed condition (1 WRU; ``ReturnValuesOnConditionCheckFailure`` hands back the
  item) names the right form for a second try. Overhead: at most (containers - 1) extra
  writes per second per merchant, zero for one container or sparse traffic. A container whose
  clock runs a little behind the item's second counts its request in that later window (stricter,
  never looser). The item does not grow: four attributes, well under 1 KB.

Considered and not taken: counting the hour per container and flushing it with ``ADD n :k`` every
second or every K requests (1 WRU per request plus up to one flush per container and second,
and an hour limit that overshoots by up to containers x flush interval x per-second limit, or
loses what a recycled container had not flushed); one attribute per second on the hour item
(unconditional, but the item grows with the seconds it saw, and a write costs per started KB).
See docs/decisions/http-api.md (rate limits).

The defaults come from the environment (template Parameters); a merchant's overrides live on
its ``MER#`` item as ``rate_limits`` = ``{"payments": {"per_second": 40, "per_hour": 20000}}`` and
are copied onto its keys, so the key lookup that authenticates a request brings them along
(``tahsil.identity.account.set_rate_limits``, the operator's ``tahsil merchants limits``).

The limiter fails open: if DynamoDB cannot count, the request goes through and the error is
logged with a ``RateLimiterErrors`` metric. Refusing payments because a counter is unavailable
would turn a throttled counter table into an outage.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tahsil.identity.account import RATE_LIMIT_CLASSES
from tahsil.kernel.config import settings
from tahsil.kernel.telemetry import logger, metrics
from tahsil.store import dal

CLASSES = RATE_LIMIT_CLASSES  # per merchant overrides (tahsil.identity.account); "notifications" is per IP only
SECOND_TTL_S = 120
HOUR_TTL_S = 2 * 3600

_pool: ThreadPoolExecutor | None = None


def seconds() -> float:
    """The limiter's clock (tests move it)."""
    return time.time()


def pool() -> ThreadPoolExecutor:
    """Threads that issue the counter while the request does its first write (see tahsil.api.http)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ratelimit")
    return _pool


class Limit(NamedTuple):
    per_second: int
    per_hour: int | None = None


PUBLIC_PREFIXES = ("/public/", "/checkout/")


def classify(method: str, path: str) -> str:
    if path.startswith(PUBLIC_PREFIXES):
        return "public"
    if method == "POST" and (path.startswith("/v1/payments") or path.startswith("/v1/payment-intents")):
        return "payments"
    if method == "GET" and path.startswith(("/v1/payments", "/v1/transactions", "/v1/payment-intents")):
        return "queries"
    return "other"


def limit_for(rate_class: str, overrides: dict[str, Any] | None = None) -> Limit:
    s = settings()
    defaults = {
        "payments": Limit(s.rate_limit_payments_per_second, s.rate_limit_payments_per_hour),
        "queries": Limit(s.rate_limit_queries_per_second),
        "public": Limit(s.rate_limit_public_per_second),
        "notifications": Limit(s.rate_limit_notifications_per_second),
        "other": Limit(s.rate_limit_other_per_second),
    }
    base = defaults[rate_class]
    mine = (overrides or {}).get(rate_class) or {}
    return Limit(int(mine.get("per_second", base.per_second)),
                 int(mine["per_hour"]) if mine.get("per_hour") is not None else base.per_hour)


@dataclass
class Decision:
    rate_class: str
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch second when the binding window resets
    window: str  # "second" | "hour"
    outcome: str = "allowed"  # "allowed" | "limited" | "error"
    counts: dict[str, int] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                   "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            headers["Retry-After"] = str(retry_after(self))
        return headers

    def message(self) -> str:
        per = "requests per second" if self.window == "second" else "requests per hour"
        return f"rate limit exceeded: {self.limit} {per}"

    def record(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "class": self.rate_class, "limit": self.limit, "remaining": self.remaining,
                "window": self.window, "reset": self.reset}


class Pending:
    """The counter in flight; ``result()`` waits for it and decides."""

    def __init__(self, rate_class: str, limit: Limit, now: float, counting: Future[tuple[dict[str, int], int]]) -> None:
        self.rate_class, self.limit, self.now, self.counting = rate_class, limit, now, counting
        self._decision: Decision | None = None

    def result(self) -> Decision:
        if self._decision is None:
            self._decision = _decide(self.rate_class, self.limit, self.now, self.counting)
        return self._decision


def _decide(rate_class: str, limit: Limit, now: float, counting: Future[tuple[dict[str, int], int]]) -> Decision:
    second = int(now)
    try:
        counts, second = counting.result(timeout=5)  # the second it was counted in (see _hour_and_second)
    except Exception:  # noqa: BLE001 - fail open, loudly (see the module docstring)

        logger.exception("rate limiter unavailable; request admitted", extra={"rate_class": rate_class})
        metrics.add_metric(name="RateLimiterErrors", unit="Count", value=1)
        return Decision(rate_class, True, limit.per_second, limit.per_second, second + 1, "second", outcome="error")
    windows = {"second": (limit.per_second, second + 1)}
    if limit.per_hour is not None:
        windows["hour"] = (limit.per_hour, (second // 3600 + 1) * 3600)
    # The binding window: a refusing one first, else the one with the fewest requests left.
    ranked = sorted(windows, key=lambda w: (counts[w] <= windows[w][0], windows[w][0] - counts[w]))
    binding = ranked[0]
    top, reset = windows[binding]
    allowed = all(counts[w] <= windows[w][0] for w in windows)
    return Decision(rate_class, allowed, top, max(0, top - counts[binding]), reset, binding,
                    outcome="allowed" if allowed else "limited", counts=counts)


_seen: dict[str, int] = {}  # hour item -> the second this container last saw in it (picks the update's form)
FORM_ATTEMPTS = 4


def _per_second(table: str, base: str, second: int) -> tuple[dict[str, int], int]:
    return {"second": dal.increment(table, f"{base}#s#{second}", expires=second + SECOND_TTL_S)}, second


def _hour_and_second(table: str, base: str, second: int) -> tuple[dict[str, int], int]:
    """One conditional write to the hour's item counts the request in its hour and in its second.

    Returns the counts and the second it was counted in: its own, or a later one that another
    container has already opened (its clock a little ahead, or its request read the clock later
    and wrote first).
    """
    hour = second // 3600
    pk = f"{base}#h#{hour}"
    same = _seen.get(pk) == second
    for _ in range(FORM_ATTEMPTS):
        if same:
            expression, condition = "ADD n :one, c :one", "s = :now"
        else:
            expression = "ADD n :one SET s = :now, c = :one, #ttl = if_not_exists(#ttl, :ttl)"
            condition = "attribute_not_exists(s) OR s < :now"
        try:
            item = dal.update_counter(table, pk, expression, condition=condition,
                                      names=None if same else {"#ttl": "ttl"},
                                      vals=dal.values(one=1, now=second, **({} if same else {"ttl": (hour + 1) * 3600 + HOUR_TTL_S})))
        except dal.ConditionFailed as failed:
            found = (failed.old or {}).get("s")
            if found is None:
                same = False
                continue
            # Another container got here first: its second is ours (or, its clock a little ahead, a later one).
            second, same = max(second, int(found)), int(found) >= second
            continue
        if len(_seen) > 10_000:
            _seen.clear()
        _seen[pk] = int(item["s"])
        return {"second": int(item["c"]), "hour": int(item["n"])}, second
    raise RuntimeError(f"rate-limit window {pk} kept moving")


def start(subject: str, rate_class: str, limit: Limit, *, at: float | None = None) -> Pending:
    """Count a request of ``subject`` (a merchant id, or ``ip:<address>``) without waiting for the write."""
    at = seconds() if at is None else at
    table = dal.rate_limit_table()
    if not table:
        failed: Future[tuple[dict[str, int], int]] = Future()
        failed.set_exception(RuntimeError("RATE_LIMIT_TABLE is not set"))
        return Pending(rate_class, limit, at, failed)
    counter = _per_second if limit.per_hour is None else _hour_and_second
    return Pending(rate_class, limit, at, pool().submit(counter, table, f"RL#{subject}#{rate_class}", int(at)))


def check(subject: str, rate_class: str, limit: Limit) -> Decision:
    return start(subject, rate_class, limit).result()


def retry_after(decision: Decision) -> int:
    return max(1, math.ceil(decision.reset - seconds()))
