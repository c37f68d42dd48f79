"""ExpiryRetryQueue -> apply again the expiry deadlines the wheel could not apply, with backoff.

A message is a deadline the sweep (or the stream, for a deadline already due) could not apply, or a
sweep's state the state machine handed over after its own retries (tahsil.payments.expiry, "deadlines
that could not be applied"). A failure backs the message off (10 s doubling to 15 minutes) and
reports it; after maxReceiveCount receives SQS moves it to ExpiryDLQ (alarmed, `tahsil ops redrive`).
A batch whose every message failed is reported like any other (not raised): retrying is this function's
normal work, and must not count as Lambda errors (LambdaErrorsAlarm is a deploy rollback trigger).
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from tahsil.api.workers import sqs_handler
from tahsil.kernel.telemetry import logger
from tahsil.payments import expiry


def retry(record: Any) -> None:
    try:
        result = expiry.retry(json.loads(record.body))
    except Exception:
        expiry.back_off(record.receipt_handle, int(record.attributes.approximate_receive_count or 1))
        raise
    logger.info("expiry retry", extra={"message_id": record.message_id, "result": result})


def retry_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=retry, processor=processor, context=context)


handler = sqs_handler(retry_batch)
