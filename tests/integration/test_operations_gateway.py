"""`tahsil ops redrive --local` against the running local gateway: a dead-lettered request log goes back to its
queue, the gateway's own consumer stores it once, and the DLQ is left empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from tests.support.gateway import Gateway


def test_redrive_returns_a_dead_lettered_request_log_to_the_running_consumer(gateway: Gateway) -> None:
    import boto3

    state = gateway.state  # what the gateway wrote to .tahsil/dev-<port>.json at start
    aws = {"endpoint_url": state["aws_endpoint_url"], "region_name": "us-east-1", "aws_access_key_id": "testing",
           "aws_secret_access_key": "testing"}
    sqs, ddb = boto3.client("sqs", **aws), boto3.client("dynamodb", **aws)
    dlq = sqs.get_queue_url(QueueName="tahsil-local-RequestLogDLQ")["QueueUrl"]
    request_id = f"req_{uuid.uuid4().hex}"
    record = {"request_id": request_id, "received_at": "2026-12-01T10:00:00.000000Z", "merchant_id": state["merchant_id"],
              "mode": "test", "method": "GET", "path": "/v1/payments", "route": "GET /v1/payments", "status": 200,
              "latency_ms": 7, "rate_limit": {}, "signature": {}, "body_sha256": "0" * 64, "api_version": "2026-01-01"}
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(record))

    env = {**os.environ, "TAHSIL_STATE_DIR": str(gateway.state_dir)}
    out = subprocess.run([sys.executable, "-m", "tahsil_local.cli", "ops", "redrive", "--local", "--queue", "RequestLogDLQ"],
                         env=env, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout)[0]["moved"] == 1

    table = state["environment"]["REQUEST_LOGS_TABLE"]
    deadline = time.monotonic() + 30
    stored: list[dict] = []
    while time.monotonic() < deadline and not stored:
        items = ddb.scan(TableName=table)["Items"]
        stored = [i for i in items if i.get("request_id", {}).get("S") == request_id]  # not the counter items
        time.sleep(0.3)
    assert len(stored) == 1
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
