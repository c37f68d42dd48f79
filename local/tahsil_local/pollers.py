"""Event sources for the local runtime: what Lambda's pollers do in AWS.

- SQS: each function subscribed with ``Type: SQS`` gets batches of messages; with
  ``ReportBatchItemFailures`` only the failed messages stay on the queue (they come back
  after the visibility timeout, and the queue's redrive policy moves them to the DLQ).
- DynamoDB streams: each function subscribed with ``Type: DynamoDB`` gets the stream's
  records in order, filtered by the template's ``FilterCriteria``; a reported failure
  makes the poller retry from that record, as Lambda does (bisect-free, in order). After
  ``MaximumRetryAttempts`` retries the batch is described on the ``DestinationConfig.OnFailure``
  queue (as Lambda's on-failure record) and the poller moves past it; `tahsil ops redrive` replays it.
- A poller looks when its queue or stream rings its doorbell (``moto_fixes.doorbell``: moto
  runs in this process), and otherwise every ``TAHSIL_POLL_INTERVAL`` seconds (0.5), for what
  no write announces: a message whose delay or visibility timeout ran out. While a poll finds
  work it polls again at once. (Ten polls a second per poller, as before, cost a third of a
  core with nothing to do.)
- Step Functions: moto executes state machines; their Lambda tasks are routed here, to
  the same pools of execution environments (processes) that serve HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

from tahsil_local import accesslog
from tahsil_local.runtime import FunctionError, FunctionPool
from tahsil_local.template import Function

ACCOUNT = "123456789012"
REGION = "us-east-1"
# How often a poller looks without being rung (delayed messages, visibility timeouts running out).
POLL_INTERVAL_S = float(os.environ.get("TAHSIL_POLL_INTERVAL", "0.5"))


def function_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"


# ------------------------------------------------------------------ filter patterns


def _matches(pattern: Any, value: Any) -> bool:
    """The subset of EventBridge patterns that Lambda filter criteria use: values, prefix, exists."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(_matches(p, value.get(k)) for k, p in pattern.items())
    if isinstance(pattern, list):
        for option in pattern:
            if isinstance(option, dict):
                if "prefix" in option and isinstance(value, str) and value.startswith(option["prefix"]):
                    return True
                if "exists" in option and (value is not None) == option["exists"]:
                    return True
            elif option == value:
                return True
        return False
    return pattern == value


def _invoke(pool: FunctionPool, event: dict[str, Any], source: str, path: str, records: int) -> Any:
    """Invoke a worker, with its line in the log (``tahsil_local.accesslog``): ok, partial or error."""
    request_id, started, status = str(uuid.uuid4()), time.perf_counter(), "error"
    try:
        result = pool.invoke(event, request_id=request_id)
        status = "partial" if isinstance(result, dict) and result.get("batchItemFailures") else "ok"
        return result
    finally:
        accesslog.line(source, path, status, (time.perf_counter() - started) * 1000, request_id, pool.fn.logical_id,
                       kind="worker", records=records)


def passes(filters: list[dict[str, Any]] | None, record: dict[str, Any]) -> bool:
    if not filters:
        return True
    return any(_matches(json.loads(f["Pattern"]), record) for f in filters)


# ------------------------------------------------------------------ pollers


class _Poller(threading.Thread):
    def __init__(self, name: str, interval: float, bell: str | None = None) -> None:
        super().__init__(name=name, daemon=True)
        from tahsil_local import moto_fixes

        self.interval = interval
        self.stopping = threading.Event()
        # Rung by moto when something arrives (see moto_fixes); stop() rings it too.
        self.bell = moto_fixes.doorbell(bell) if bell else threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.bell.clear()  # before looking: what arrives while we look rings it again
            try:
                busy = self.poll()
            except Exception as exc:  # noqa: BLE001 - a poller must survive a failed round
                sys.stderr.write(f"{self.name}: {exc!r}\n")
                busy = False
            if not busy:
                self.bell.wait(self.interval)

    def poll(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        self.bell.set()


class SqsPoller(_Poller):
    def __init__(self, pool: FunctionPool, queue_url: str, queue_arn: str, batch_size: int,
                 interval: float = POLL_INTERVAL_S) -> None:
        super().__init__(f"sqs:{pool.fn.logical_id}", interval, bell=queue_url.rstrip("/").rsplit("/", 1)[-1])
        import boto3

        self.sqs = boto3.client("sqs", region_name=REGION)
        self.pool, self.queue_url, self.queue_arn, self.batch_size = pool, queue_url, queue_arn, min(batch_size, 10)

    def poll(self) -> bool:
        # Short polls: a long poll would hold the emulator's connection for nothing.
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                          WaitTimeSeconds=0, AttributeNames=["All"], MessageAttributeNames=["All"])
        messages = answer.get("Messages", [])
        if not messages:
            return False
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        } for m in messages]}
        try:
            result = _invoke(self.pool, event, "SQS", self.queue_url.rsplit("/", 1)[-1], len(messages)) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            if failed:
                sys.stderr.write(f"{self.name}: {len(failed)} message(s) failed; they return after the visibility timeout\n")
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: every message comes back
            sys.stderr.write(f"{self.name}: batch failed: {exc!r}\n")
            failed = {m["MessageId"] for m in messages}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)
        return True


class StreamPoller(_Poller):
    def __init__(self, pool: FunctionPool, table_name: str, batch_size: int, filters: list[dict[str, Any]] | None,
                 interval: float = POLL_INTERVAL_S, on_failure_url: str | None = None, max_retries: int = -1) -> None:
        super().__init__(f"stream:{pool.fn.logical_id}", interval, bell=table_name)
        self.on_failure_url, self.max_retries, self.retries = on_failure_url, max_retries, 0
        import boto3

        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.streams = boto3.client("dynamodbstreams", region_name=REGION)
        self.pool, self.table_name, self.batch_size, self.filters = pool, table_name, batch_size, filters
        self.stream_arn = self.ddb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self.shard_id = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.after: str | None = None  # last sequence number handed over (or filtered out)

    def poll(self) -> bool:
        # A fresh iterator each round, from the last sequence number: robust to the emulator
        # replacing its table object when a transaction rolls back.
        args: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": self.shard_id}
        if self.after is None:
            args["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            args |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.after}
        iterator = self.streams.get_shard_iterator(**args)["ShardIterator"]
        records = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size).get("Records", [])
        if not records:
            return False
        batch = [r for r in records if passes(self.filters, r)]
        for r in batch:
            r["eventSourceARN"] = self.stream_arn
            r["dynamodb"] = _base64_binaries(r["dynamodb"])  # boto3 decodes B/BS; Lambda's event carries base64 text
            created = r["dynamodb"].get("ApproximateCreationDateTime")
            if hasattr(created, "timestamp"):  # boto3 parses it; Lambda's event carries epoch seconds
                r["dynamodb"]["ApproximateCreationDateTime"] = int(created.timestamp())
        if not batch:
            self.after = records[-1]["dynamodb"]["SequenceNumber"]
            return True
        try:
            result = _invoke(self.pool, {"Records": batch}, "STREAM", self.table_name, len(batch)) or {}
            failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
        except Exception as exc:  # noqa: BLE001 - retry the whole batch, as Lambda does
            sys.stderr.write(f"{self.name}: batch failed: {exc!r}\n")
            failures = [batch[0]["dynamodb"]["SequenceNumber"]]
        if failures and self._give_up(batch, records, min(failures, key=int)):
            return True
        if failures:
            sys.stderr.write(f"{self.name}: {len(failures)} record(s) failed; retrying from the first\n")
            first = min(failures, key=int)
            previous = [r["dynamodb"]["SequenceNumber"] for r in records if int(r["dynamodb"]["SequenceNumber"]) < int(first)]
            self.after = previous[-1] if previous else self.after
            time.sleep(1)
            return False
        self.retries = 0
        self.after = records[-1]["dynamodb"]["SequenceNumber"]
        return True

    def _give_up(self, batch: list[dict[str, Any]], records: list[dict[str, Any]], first: str) -> bool:
        """Retries exhausted: describe the batch from ``first`` on the failure queue and move past it."""
        self.retries += 1
        if self.on_failure_url is None or self.max_retries < 0 or self.retries <= self.max_retries:
            return False
        import boto3

        last = records[-1]["dynamodb"]["SequenceNumber"]
        failure = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function_arn(self.pool.fn.logical_id) + ":live",
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": self.retries},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "DDBStreamBatchInfo": {"shardId": self.shard_id, "startSequenceNumber": first, "endSequenceNumber": last,
                                   "approximateArrivalOfFirstRecord": None, "approximateArrivalOfLastRecord": None,
                                   "batchSize": len([r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= int(first)]),
                                   "streamArn": self.stream_arn},
        }
        boto3.client("sqs", region_name=REGION).send_message(QueueUrl=self.on_failure_url, MessageBody=json.dumps(failure))
        sys.stderr.write(f"{self.name}: retries exhausted; batch {first}..{last} described on its failure queue\n")
        self.retries = 0
        self.after = last
        return True


# ------------------------------------------------------------------ wiring


def _queue_ref(value: Any) -> str:
    """The logical id behind ``!GetAtt Queue.Arn`` or ``!Ref Queue``."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        if "Ref" in value:
            return value["Ref"]
    raise ValueError(f"unsupported event source reference {value!r}")


def start(functions: list[Function], pools: dict[str, FunctionPool], refs: dict[str, str]) -> list[_Poller]:
    import boto3

    sqs = boto3.client("sqs", region_name=REGION)
    pollers: list[_Poller] = []
    for fn in functions:
        for event in fn.raw_events.values():
            props = event.get("Properties") or {}
            if event["Type"] == "SQS":
                queue_url = refs[_queue_ref(props["Queue"])]
                arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                pollers.append(SqsPoller(pools[fn.logical_id], queue_url, arn, int(props.get("BatchSize", 10))))
            elif event["Type"] == "DynamoDB":
                table = refs[_queue_ref(props["Stream"])]
                filters = (props.get("FilterCriteria") or {}).get("Filters")
                on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
                pollers.append(StreamPoller(pools[fn.logical_id], table, int(props.get("BatchSize", 100)), filters,
                                            on_failure_url=refs[_queue_ref(on_failure)] if on_failure else None,
                                            max_retries=int(props.get("MaximumRetryAttempts", -1))))
    for p in pollers:
        p.start()
    return pollers


def route_lambda_invocations(pools: dict[str, FunctionPool]) -> None:
    """Send moto's Lambda invocations (from Step Functions tasks) to the functions' pools.

    A function error answers as Lambda's Invoke API does: 200 with ``X-Amz-Function-Error`` and
    the error document, so the state machine's Retry/Catch see its ``errorType``."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config

    default_user_config["lambda"] = {"use_docker": False}
    default_user_config["stepfunctions"] = {"execute_state_machine": True}

    def invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> bytes:
        name = function_name.split(":function:")[-1].split(":")[0]
        pool = pools[name]
        payload = json.loads(body) if body else {}
        try:
            result = _invoke(pool, payload, "SFN", name, 1)
        except FunctionError as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(exc.payload).encode()
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def create_state_machines(doc: dict[str, Any], refs: dict[str, str], root: Any) -> None:
    import boto3

    from tahsil_local import aws

    sfn = boto3.client("stepfunctions", region_name=REGION)
    for logical_id, res in doc["Resources"].items():
        if res["Type"] != "AWS::Serverless::StateMachine":
            continue
        props = res["Properties"]
        definition = (root / props["DefinitionUri"]).read_text()
        for name, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + name + "}", aws.resolve(value, refs))
        arn = sfn.create_state_machine(
            name=f"tahsil-local-{logical_id}-{uuid.uuid4().hex[:6]}", definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{logical_id}Role", type=props.get("Type", "STANDARD"),
        )["stateMachineArn"]
        refs[logical_id] = arn


def _base64_binaries(value: Any) -> Any:
    """A stream record as Lambda's JSON event has it: binary attribute values as base64 strings."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _base64_binaries(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_base64_binaries(v) for v in value]
    return value
