"""Live payments through the fake Adyen (tahsil_local/fake_adyen.py): a configured merchant, calls, notifications."""

from __future__ import annotations

import json
import random
from typing import Any

from tahsil_local.fake_adyen import FakeAdyen
from tests.support.lambdas import handler_of, invoke, load_event, load_sqs_event

API_KEY = "AQE1test_fake_adyen_api_key_0001"
HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
ACCOUNT = "TahsilTestECOM"
LIVE_CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2030, "cvv": "737", "cardholder_name": "Ada L"}


def connect(merchant_id: str, fake: FakeAdyen) -> dict[str, Any]:
    from tahsil.connectors import settings

    settings.reset_cache()
    return settings.configure(merchant_id, mode="live", connector="adyen", operator="tests", merchant_account=ACCOUNT,
                              api_key=API_KEY, hmac_key=HMAC_KEY, environment="test", base_url=fake.url)


def pay(key: str, *, amount: int = 1000, sale: bool = False, idem: str | None = None, card: dict[str, Any] | None = None):
    body = {"amount": amount, "currency": "EUR", "card": {**LIVE_CARD, **(card or {})}}
    event = load_event("payments-sale" if sale else "payments-authorize", key=key, body=body,
                       headers={"Idempotency-Key": idem} if idem else None)
    if idem is None:
        event["headers"].pop("Idempotency-Key", None)
        event["multiValueHeaders"].pop("Idempotency-Key", None)
    return invoke("SalePaymentFunction" if sale else "AuthorizePaymentFunction", event)


def act(action: str, key: str, payment_id: str, body: dict[str, Any] | None = None, idem: str | None = None):
    fn = {"capture": "CapturePaymentFunction", "void": "VoidPaymentFunction", "refund": "RefundPaymentFunction"}[action]
    event = load_event(f"payments-{action}", key=key, path_id=payment_id, body=body or {},
                       headers={"Idempotency-Key": idem} if idem else None)
    if idem is None:
        event["headers"].pop("Idempotency-Key", None)
        event["multiValueHeaders"].pop("Idempotency-Key", None)
    return invoke(fn, event)


def get(key: str, payment_id: str):
    return invoke("GetPaymentFunction", load_event("payments-get", key=key, path_id=payment_id))


def notify(merchant_id: str, body: str) -> tuple[int, str]:
    """POST a notification body to the merchant's endpoint; (status, raw body)."""
    event = load_event("connectors-adyen-notifications", body=body)
    event["path"] = f"/connectors/adyen/{merchant_id}/notifications"
    event["pathParameters"] = {"merchant_id": merchant_id}
    from tahsil_local.gateway import LambdaContext

    raw = handler_of("AdyenNotificationsFunction")(event, LambdaContext("AdyenNotificationsFunction", 512, "x",
                                                                       deadline=10**9))
    return raw["statusCode"], raw.get("body") or ""


def deliver(merchant_id: str, fake: FakeAdyen, *, rng: random.Random | None = None, duplicate: float = 0.0) -> int:
    """Send what the fake has queued, shuffled and partly duplicated when ``rng`` says so; all must be accepted."""
    items = fake.take_notifications()
    if rng is not None:
        items += [i for i in items if rng.random() < duplicate]
        rng.shuffle(items)
    for item in items:
        status, text = notify(merchant_id, FakeAdyen.envelope([item]))
        assert (status, text) == (200, "[accepted]"), (status, text)
    return len(items)


def run_recovery(rounds: int = 3) -> int:
    """Drain the recovery queue through the worker, as the SQS trigger would; returns messages handled."""
    import os

    from tahsil.kernel.config import settings  # noqa: F401 - the environment is set by aws_env
    from tahsil.store import aws

    sqs = aws.client("sqs")
    url = os.environ["RECOVERY_QUEUE_URL"]
    handled = 0
    for _ in range(rounds):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        while got:
            event = load_sqs_event("processor-recovery", bodies=[m["Body"] for m in got])
            for record, message in zip(event["Records"], got, strict=True):
                record["messageId"] = message["MessageId"]
            from tahsil_local.gateway import LambdaContext

            answer = handler_of("ProcessorRecoveryFunction")(event, LambdaContext("ProcessorRecoveryFunction", 512, "r",
                                                                                  deadline=10**9))
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
            for message in got:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    handled += 1
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
            if failed and all(m["MessageId"] in failed for m in got):
                break
    return handled


def events_of(payment_id: str) -> list[str]:
    from tahsil.store import dal

    client = dal._ddb()
    types = []
    for page in client.get_paginator("scan").paginate(TableName=dal.payments_table()):
        for raw in page["Items"]:
            item = dal.load(raw)
            if item["pk"].startswith(("EVTS#", "EVT#")) and item.get("object_id") == payment_id:
                types.append(item["type"])
    return sorted(types)


def all_items() -> list[dict[str, Any]]:
    from tahsil.store import dal

    client = dal._ddb()
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=dal.payments_table()):
        out.extend(dal.load(i) for i in page["Items"])
    return out


def dumps(value: Any) -> str:
    """Every stored value as text, compressed event payloads opened, so a leak check sees inside them."""
    import zlib

    def text(raw: Any) -> str:
        data = bytes(getattr(raw, "value", raw)) if isinstance(getattr(raw, "value", raw), bytes | bytearray) else None
        if data is None:
            return str(raw)
        try:
            return zlib.decompress(data).decode()
        except zlib.error:
            return data.hex()

    return json.dumps(value, default=text)
