"""A merchant webhook receiver on 127.0.0.1 and the webhook pipeline run in-process (stream records, fan-out, delivery)."""

from __future__ import annotations

import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.lambdas import invoke, load_event


class Receiver:
    """A merchant's webhook endpoint on 127.0.0.1 whose answers the test scripts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.plan: list[int] = []  # status codes for the next requests; then `default`
        self.default = 200
        self.fail_rate = 0.0
        self.secret: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    if receiver.plan:
                        status = receiver.plan.pop(0)
                    elif receiver.fail_rate and random.random() < receiver.fail_rate:  # noqa: S311
                        status = 503
                    else:
                        status = receiver.default
                    receiver.received.append({"at": time.monotonic(), "headers": headers, "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if 200 <= r["status"] < 300]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def card_number(i: int) -> str:
    """A distinct Luhn-valid Visa number per i, so velocity rules see 200 different cards."""
    body = f"4111{i:011d}"
    total = 0
    for pos, ch in enumerate(reversed(body)):
        d = int(ch)
        if pos % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def create_endpoint(key: str, url: str, events: list[str] | None = None):
    return invoke("CreateWebhookEndpointFunction", load_event(
        "webhook-endpoints-create", key=key, body={"url": url, "enabled_events": events or ["*"]}))


def stream_records() -> list[dict[str, Any]]:
    from moto.dynamodb.models import dynamodb_backends

    from tahsil.store import dal

    shard = dynamodb_backends["123456789012"]["us-east-1"].tables[dal.payments_table()].stream_shard
    return [r.to_json() for r in shard.items]


def run_pipeline() -> None:
    """What Lambda's pollers do: the stream to the fan-out, then the queue to the first attempt."""
    import boto3

    from tahsil_local.pollers import passes
    from tahsil_local.template import load

    pattern = load()["Resources"]["WebhookFanoutFunction"]["Properties"]["Events"]["Outbox"]["Properties"]["FilterCriteria"]["Filters"]
    records = [r for r in stream_records() if passes(pattern, r)]
    assert invoke_raw("WebhookFanoutFunction", {"Records": records}) == {"batchItemFailures": []}
    sqs = boto3.client("sqs")
    import os

    queue = os.environ["DELIVERY_QUEUE_URL"]
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"} for m in messages]}
        assert invoke_raw("WebhookDeliverFunction", event) == {"batchItemFailures": []}
        for m in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def invoke_raw(logical_id: str, event: dict[str, Any]) -> Any:
    import time
    import uuid

    from tahsil_local.gateway import LambdaContext
    from tests.support.lambdas import handler_of

    return handler_of(logical_id)(event, LambdaContext(logical_id, 512, str(uuid.uuid4()), time.monotonic() + 30))
