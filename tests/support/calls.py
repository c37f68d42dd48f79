"""Helpers for the developer-platform tests: call any route with a key, drain the request-log queue."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

from tests.support.lambdas import Answer, handler_of, invoke, load_event

CARD = {"number": "4242424242424242", "cardholder_name": "John Doe", "exp_month": 12, "exp_year": 2030, "cvv": "123"}
PAYMENT = {"amount": 9999, "currency": "USD", "card": CARD, "description": "Order #1"}

# events/ file -> template function
FUNCTIONS = {
    "payments-authorize": "AuthorizePaymentFunction",
    "payments-sale": "SalePaymentFunction",
    "payments-capture": "CapturePaymentFunction",
    "payments-refund": "RefundPaymentFunction",
    "payments-get": "GetPaymentFunction",
    "payments-list": "ListPaymentsFunction",
    "transactions-list": "ListTransactionsFunction",
    "api-keys-create": "CreateApiKeyFunction",
    "api-keys-list": "ListApiKeysFunction",
    "api-keys-roll": "RollApiKeyFunction",
    "api-keys-revoke": "RevokeApiKeyFunction",
    "request-logs-list": "ListRequestLogsFunction",
    "api-versions-list": "ListApiVersionsFunction",
    "account-api-version": "UpgradeApiVersionFunction",
    "credential-guards-get": "GetCredentialGuardsFunction",
}


def call(name: str, key: str | None, *, body: Any = None, path_id: str | None = None, query: dict[str, str] | None = None,
         headers: dict[str, str] | None = None, source_ip: str | None = None, idem: str | None = None,
         drop_body: bool = False) -> Answer:
    event = load_event(name, key=key, body=body, path_id=path_id, query=query, headers=headers)
    if idem is None:
        event["headers"].pop("Idempotency-Key", None)
        event["multiValueHeaders"].pop("Idempotency-Key", None)
    else:
        event["headers"]["Idempotency-Key"] = idem
        event["multiValueHeaders"]["Idempotency-Key"] = [idem]
    if drop_body:
        event["body"] = None
    if source_ip is not None:
        event["requestContext"]["identity"]["sourceIp"] = source_ip
    return invoke(FUNCTIONS[name], event)


_serial = itertools.count(1)


def fresh_card() -> str:
    """A Luhn-valid Visa the simulated issuer approves, new each time (so the fraud velocity rule stays quiet)."""
    from tahsil.payments import cards

    body = f"424242{next(_serial):09d}"
    return next(body + d for d in "0123456789" if cards.luhn_ok(body + d))


def authorize(key: str, **kwargs: Any) -> Answer:
    """An authorization; without an Idempotency-Key each one uses a new card."""
    body = kwargs.pop("body", None)
    if body is None:
        body = PAYMENT if kwargs.get("idem") else {**PAYMENT, "card": {**CARD, "number": fresh_card()}}
    return call("payments-authorize", key, body=body, **kwargs)


def create_key(key: str, **fields: Any) -> Answer:
    body = {"name": "a key", "scopes": ["payments:create", "payments:read"], **fields}
    return call("api-keys-create", key, body=body)


def queued_records() -> list[dict[str, Any]]:
    """Receive (and delete) every request-log message waiting in the local queue."""
    from tahsil.kernel.config import settings
    from tahsil.store import aws

    sqs, url = aws.client("sqs"), settings().request_log_queue_url
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = got.get("Messages", [])
        if not batch:
            return messages
        for m in batch:
            messages.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [{
        "messageId": m.get("MessageId", str(uuid.uuid4())), "receiptHandle": m.get("ReceiptHandle", "r"),
        "body": m["Body"], "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                                          "SenderId": "local", "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:RequestLogQueue", "awsRegion": "us-east-1",
    } for m in messages]}


def consume(event: dict[str, Any]) -> dict[str, Any]:
    from tahsil_local.gateway import LambdaContext

    context = LambdaContext("RequestLogConsumerFunction", 512, str(uuid.uuid4()), deadline=time.monotonic() + 30)
    return handler_of("RequestLogConsumerFunction")(event, context)


def flush_logs() -> list[dict[str, Any]]:
    """Deliver every queued record to the consumer, as Lambda's SQS poller does; return the records."""
    messages = queued_records()
    if messages:
        for start in range(0, len(messages), 100):
            assert consume(sqs_event(messages[start:start + 100])) == {"batchItemFailures": []}
    return [json.loads(m["Body"]) for m in messages]
