"""Entry points for the functions that no HTTP request waits for (queues, streams, state machines).

They carry the same Powertools stack as the API functions: structured logs, metrics, traces.
Batch sources report partial failures, so one bad record never replays a whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from tahsil.api.tracing import drop_unsent_metrics, traced
from tahsil.kernel.telemetry import logger, metrics


def batch_handler(event_type: EventType, record_handler: Callable[[Any], Any]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    @logger.inject_lambda_context(clear_state=True)
    @drop_unsent_metrics(metrics)
    @traced
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        processor = BatchProcessor(event_type=event_type)
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

    return handler


def sqs_handler(handle: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A queue consumer that handles its batch as a whole and reports its own partial failures."""
    @logger.inject_lambda_context(clear_state=True)
    @drop_unsent_metrics(metrics)
    @traced
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle(event, context)

    return handler


def task_handler(step: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    @logger.inject_lambda_context(clear_state=True)
    @drop_unsent_metrics(metrics)
    @traced
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return step(event)

    return handler
