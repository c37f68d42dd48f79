"""SQS -> the first attempt of a delivery; a failed one is handed to the retry state machine."""

import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tahsil.api import workers
from tahsil.webhooks import webhooks


def deliver(record: SQSRecord) -> None:
    message = json.loads(record.body)
    result = webhooks.attempt(message["event_id"], message["endpoint_id"], 1, int(message["round"]))
    workers.metrics.add_metric(name=f"WebhookAttempt_{result['outcome']}", unit=MetricUnit.Count, value=1)
    if result["outcome"] == "retry":
        webhooks.start_retries(message["event_id"], message["endpoint_id"], int(message["round"]), result["wait_seconds"])


handler = workers.batch_handler(EventType.SQS, deliver)
