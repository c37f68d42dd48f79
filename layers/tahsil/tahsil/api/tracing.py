"""Powertools Tracer, made on a function's first invocation instead of at import, and only if wanted.

Importing the X-Ray SDK costs ~150-180 ms and it brings a second botocore (24 MB), so the
built layer leaves it out (layers/tahsil/requirements.txt): Lambda's active tracing still
records every sampled invocation (its segment, init and duration) from outside the function.
Where the SDK is installed (the dev venv, or a layer that adds ``aws-xray-sdk``) and tracing
is not disabled (POWERTOOLS_TRACE_DISABLED), the Tracer adds subsegments per AWS call; it is
created on the first request, so imports stay cheap either way.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


def sdk_tracing() -> bool:
    """Whether to wrap handlers in the Powertools Tracer: tracing not disabled, and the X-Ray SDK installed."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return False
    return importlib.util.find_spec("aws_xray_sdk") is not None


def traced(handler: Handler) -> Handler:
    wrapped: list[Handler] = []
    lock = threading.Lock()

    def call(event: dict[str, Any], context: Any) -> Any:
        if not wrapped:
            with lock:
                if not wrapped and not sdk_tracing():
                    wrapped.append(handler)
                elif not wrapped:
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
