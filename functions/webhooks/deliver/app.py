"""SQS -> the first attempts of deliveries; a failed one is handed to the retry state machine.

A batch's attempts are recorded together (``delivery.attempts``): one transaction writes each delivery row
and adds the batch's counts to the delivery counters once. Partial batch failures (ReportBatchItemFailures):
a message that does not parse, or whose record could not be written, comes back alone.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from tahsil.api import workers
from tahsil.webhooks import delivery
from tahsil.webhooks.message import Message


def deliver(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    parsed: list[tuple[str, Message]] = []
    for record in event.get("Records", []):
        try:
            parsed.append((record["messageId"], Message.from_json(record["body"])))
        except (KeyError, TypeError, ValueError):
            workers.logger.exception("undeliverable message", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    results = delivery.attempts([m for _, m in parsed])
    for (message_id, message), result in zip(parsed, results, strict=True):
        if result is None:
            failures.append({"itemIdentifier": message_id})
            continue
        workers.metrics.add_metric(name=f"WebhookAttempt_{result['outcome']}", unit=MetricUnit.Count, value=1)
        if result["outcome"] == "retry":
            try:
                delivery.start_retries(message, result["wait_seconds"])
            except Exception:  # noqa: BLE001 - the message comes back; its attempt is skipped, the retries start again
                workers.logger.exception("retries not started", extra={"event_id": message.event_id})
                failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


handler = workers.sqs_handler(deliver)
