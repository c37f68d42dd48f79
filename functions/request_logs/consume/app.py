"""RequestLogQueue -> RequestLogsTable: batches of request log records, written with BatchWriteItem.

Partial batch failures (ReportBatchItemFailures): a message that does not parse, or whose
record DynamoDB did not take after retries, is reported, so only it comes back (and after
``maxReceiveCount`` receives it moves to the DLQ).
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tahsil.api import requestlog

logger = Logger(service="tahsil")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def parse(record: SQSRecord) -> requestlog.Record:
    return requestlog.decode_message(record.body)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with processor(records=event["Records"], handler=parse):
        outcomes = processor.process()
    failures = list(processor.response()["batchItemFailures"])  # messages that did not parse
    parsed = {raw["messageId"]: result for status, result, raw in outcomes if status == "success"}
    not_written = {r.request_id for r in requestlog.store(list(parsed.values()))}
    failures += [{"itemIdentifier": mid} for mid, rec in parsed.items() if rec.request_id in not_written]
    try:
        requestlog.touch_keys([r for r in parsed.values() if r.request_id not in not_written])
    except Exception:  # noqa: BLE001 - last_used_at is best effort; the logs are written
        logger.exception("last_used_at not updated")
    return {"batchItemFailures": failures}
