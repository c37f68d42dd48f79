"""Powertools Tracer, made on a function's first invocation instead of at import.

Importing the X-Ray SDK costs ~150 ms; creating the Tracer lazily keeps handler imports
cheap (docs/benchmarks.md) and costs the same once, on the first request, in Lambda.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


def traced(handler: Handler) -> Handler:
    wrapped: list[Handler] = []
    lock = threading.Lock()

    def call(event: dict[str, Any], context: Any) -> Any:
        if not wrapped:
            with lock:
                if not wrapped:
                    from aws_lambda_powertools import Tracer

                    wrapped.append(Tracer(service="tahsil").capture_lambda_handler(capture_response=False)(handler))
        return wrapped[0](event, context)

    return call


def drop_unsent_metrics(metrics: Any) -> Callable[[Handler], Handler]:
    """With POWERTOOLS_METRICS_DISABLED (tests, the local runtime) Powertools 3.37 never clears
    the metric set, so it grows and is printed anyway every 100 points. Clear it after each call."""

    def decorate(handler: Handler) -> Handler:
        def call(event: dict[str, Any], context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                from aws_lambda_powertools.metrics.functions import is_metrics_disabled

                if is_metrics_disabled():
                    metrics.clear_metrics()

        return call

    return decorate
