"""SQS -> the first attempts of deliveries; a failed one is handed to the retry state machine.

A batch's attempts are recorded together (``webhooks.attempts``): one transaction writes each delivery row
and adds the batch's counts to the delivery counters once. Partial batch failures (ReportBatchItemFailures):
a message that does not parse, or whose record could not be written, comes back alone.
"""

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from tahsil.api import workers
from tahsil.webhooks import webhooks


def _parse(body: str) -> webhooks.Message:
    message = json.loads(body)
    return webhooks.Message(str(message["event_id"]), str(message["endpoint_id"]), 1, int(message["round"]),
                            of=int(message["of"]) if message.get("of") else None,
                            merchant_id=str(message["merchant_id"]) if message.get("merchant_id") else None,
                            mode=str(message["mode"]) if message.get("mode") else None)


def deliver(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    parsed: list[tuple[str, webhooks.Message]] = []
    for record in event.get("Records", []):
        try:
            parsed.append((record["messageId"], _parse(record["body"])))
        except (KeyError, TypeError, ValueError):
            workers.logger.exception("undeliverable message", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    results = webhooks.attempts([m for _, m in parsed])
    for (message_id, message), result in zip(parsed, results, strict=True):
        if result is None:
            failures.append({"itemIdentifier": message_id})
            continue
        workers.metrics.add_metric(name=f"WebhookAttempt_{result['outcome']}", unit=MetricUnit.Count, value=1)
        if result["outcome"] == "retry":
            try:
                webhooks.start_retries(message.event_id, message.endpoint_id, message.round, result["wait_seconds"],
                                       merchant_id=message.merchant_id, mode=message.mode)
            except Exception:  # noqa: BLE001 - the message comes back; its attempt is skipped, the retries start again
                workers.logger.exception("retries not started", extra={"event_id": message.event_id})
                failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


handler = workers.sqs_handler(deliver)
