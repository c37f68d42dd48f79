"""Operator action: replay what failed all its retries, so nothing is dropped silently (``tahsil ops redrive``).

Two kinds of failure path, one rule: a message leaves its failure queue only after its work was handed
on (a DLQ message sent back to its source queue) or done (a stream batch processed without failures).
A crash in between leaves it where it was, so a second run repeats it; every consumer is idempotent
(deliveries record each attempt with a conditional write, request logs are keyed by request id,
fan-out and expiry timers are "safe to run twice"), so a repeat is harmless.

- **Dead-letter queues** (webhook deliveries, request logs): each message is sent back to the source
  queue whose ``RedrivePolicy`` names the DLQ, then deleted from the DLQ. Two DLQ messages with the same
  body (the same delivery dead-lettered twice) are sent once. A run stops at the messages it has already
  seen, so a message that dead-letters again during the run is not looped.
- **Stream failure queues** (a Lambda event source mapping's on-failure destination): a message only
  describes the failed batch (stream, shard, first and last sequence number). The records are read back
  from the stream (DynamoDB keeps them 24 h), filtered as the mapping filters them, and handed to the
  function again (``invoke``: the deployed alias, or the local runtime's in-process handler). A record the
  stream no longer holds is reported as expired and its message kept for the operator (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tahsil.store import aws

Invoke = Callable[[str, dict[str, Any]], dict[str, Any] | None]
Keep = Callable[[dict[str, Any]], bool]


@dataclass
class Report:
    queue: str
    moved: int = 0  # DLQ messages handed back to their source queue
    replayed: int = 0  # stream batches processed again
    records: int = 0  # stream records handed to the function
    duplicates: int = 0  # DLQ messages whose twin was already moved in this run
    failed: int = 0  # left in the queue: the work failed again
    expired: int = 0  # left in the queue: the stream no longer holds the records
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "errors" or v}


def _receive(queue_url: str, visibility: int) -> list[dict[str, Any]]:
    answer = aws.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                               VisibilityTimeout=visibility, AttributeNames=["All"],
                                               MessageAttributeNames=["All"])
    return answer.get("Messages", [])


def source_queue_of(dlq_url: str, candidates: list[str]) -> str:
    """The queue among ``candidates`` whose RedrivePolicy dead-letters into ``dlq_url``."""
    sqs = aws.client("sqs")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for url in candidates:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
        policy = json.loads(attrs.get("RedrivePolicy") or "{}")
        if policy.get("deadLetterTargetArn") == dlq_arn:
            return url
    raise LookupError(f"no queue dead-letters into {dlq_url}")


def move_messages(dlq_url: str, source_url: str, *, limit: int | None = None, visibility: int = 120) -> Report:
    """Send each DLQ message back to its source queue, then delete it from the DLQ."""
    sqs = aws.client("sqs")
    report = Report(queue=dlq_url)
    seen: set[str] = set()
    sent: set[str] = set()
    while limit is None or report.moved + report.duplicates < limit:
        batch = [m for m in _receive(dlq_url, visibility) if m["MessageId"] not in seen]
        if not batch:
            break
        for message in batch:
            if limit is not None and report.moved + report.duplicates >= limit:
                break
            seen.add(message["MessageId"])
            digest = hashlib.sha256(message["Body"].encode()).hexdigest()
            if digest not in sent:
                attributes = dict(message.get("MessageAttributes") or {})
                attributes["tahsil-redriven-from"] = {"DataType": "String", "StringValue": message["MessageId"]}
                sqs.send_message(QueueUrl=source_url, MessageBody=message["Body"], MessageAttributes=_sendable(attributes))
                sent.add(digest)
                report.moved += 1
            else:
                report.duplicates += 1
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    return report


def _sendable(attributes: dict[str, Any]) -> dict[str, Any]:
    """Received message attributes carry list fields SendMessage refuses; keep the type and value only."""
    out = {}
    for name, attr in list(attributes.items())[:10]:  # SQS allows 10 attributes
        kept = {k: attr[k] for k in ("DataType", "StringValue", "BinaryValue") if k in attr}
        out[name] = kept
    return out


def _lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams API record as Lambda hands it to a function (JSON-safe)."""
    out = json.loads(json.dumps(record, default=_jsonable))
    out["eventSourceARN"] = stream_arn
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, bytes | bytearray):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def read_batch(info: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The records of a failed batch (``DDBStreamBatchInfo``), or None when the stream no longer has them."""
    streams = aws.client("dynamodbstreams")
    first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    try:
        iterator = streams.get_shard_iterator(StreamArn=info["streamArn"], ShardId=info["shardId"],
                                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              SequenceNumber=info["startSequenceNumber"])["ShardIterator"]
    except Exception as exc:  # noqa: BLE001 - TrimmedDataAccessException, ResourceNotFoundException: gone
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("TrimmedDataAccessException", "ResourceNotFoundException"):
            return None
        raise
    records: list[dict[str, Any]] = []
    for _ in range(1000):  # bounded: a shard hands out at most 1,000 records a call
        answer = streams.get_records(ShardIterator=iterator, Limit=1000)
        page = answer.get("Records", [])
        for record in page:
            number = int(record["dynamodb"]["SequenceNumber"])
            if first <= number <= last:
                records.append(_lambda_record(record, info["streamArn"]))
        done = not page or int(page[-1]["dynamodb"]["SequenceNumber"]) >= last
        iterator = answer.get("NextShardIterator")
        if done or not iterator:
            break
    if not records:
        return None
    return records


def replay_stream_failures(failure_url: str, invoke: Invoke, *, keep: Keep | None = None,
                           limit: int | None = None, visibility: int = 300) -> Report:
    """Hand each failed stream batch described in ``failure_url`` to its function again."""
    sqs = aws.client("sqs")
    report = Report(queue=failure_url)
    seen: set[str] = set()
    while limit is None or report.replayed < limit:
        batch = [m for m in _receive(failure_url, visibility) if m["MessageId"] not in seen]
        if not batch:
            break
        for message in batch:
            seen.add(message["MessageId"])
            try:
                failure = json.loads(message["Body"])
                info = failure["DDBStreamBatchInfo"]
                function_arn = failure["requestContext"]["functionArn"]
            except (ValueError, KeyError, TypeError):
                report.failed += 1
                report.errors.append(f"{message['MessageId']}: not a stream failure record")
                continue
            records = read_batch(info)
            if records is None:
                report.expired += 1
                report.errors.append(f"{message['MessageId']}: sequence {info['startSequenceNumber']}.."
                                     f"{info['endSequenceNumber']} is no longer in the stream")
                continue
            chosen = [r for r in records if keep is None or keep(r)]
            try:
                result = invoke(function_arn, {"Records": chosen}) if chosen else {}
            except Exception as exc:  # noqa: BLE001 - the batch failed again; keep its message
                report.failed += 1
                report.errors.append(f"{message['MessageId']}: {exc!r}")
                continue
            failures = (result or {}).get("batchItemFailures") or []
            if failures:
                report.failed += 1
                report.errors.append(f"{message['MessageId']}: {len(failures)} record(s) failed again")
                continue
            sqs.delete_message(QueueUrl=failure_url, ReceiptHandle=message["ReceiptHandle"])
            report.replayed += 1
            report.records += len(chosen)
    return report
