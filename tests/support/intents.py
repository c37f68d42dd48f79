"""Payment intents through their handlers (events/ samples, moto in-process): create, confirm, read, cancel."""

from __future__ import annotations

from typing import Any

import boto3

from tests.support.gateway import Gateway
from tests.support.lambdas import invoke, load_event


def payments_table(gw: Gateway) -> tuple[Any, str]:
    state = gw.state
    client = boto3.client("dynamodb", endpoint_url=state["aws_endpoint_url"], region_name=state.get("region", "us-east-1"),
                          aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing")
    return client, state["environment"]["PAYMENTS_TABLE"]


def expire(gw: Gateway, intent_id: str) -> None:
    client, table = payments_table(gw)
    client.update_item(TableName=table, Key={"pk": {"S": f"PI#{intent_id}"}, "sk": {"S": "PI"}},
                       UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"S": "2020-01-01T00:00:00Z"}})


CARD = {"number": "4242424242424242", "cardholder_name": "John Doe", "exp_month": 12, "exp_year": 2030, "cvv": "123"}


DECLINED = "4000000000000002"


def intent_body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"amount": 9999, "currency": "USD",
                            "success_url": "https://shop.example/order/success?session_id={CHECKOUT_SESSION_ID}",
                            "cancel_url": "https://shop.example/order/cancel", "order_id": "12345",
                            "description": "Order #12345 - Premium Plan", "customer_email": "john@example.com",
                            "metadata": {"cart": "c-1"}}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def create(key: str, payload: dict[str, Any] | None = None, idem: str | None = None):
    event = load_event("payment-intents-create", key=key, body=payload if payload is not None else intent_body())
    if idem is None:
        event["headers"].pop("Idempotency-Key", None)
        event["multiValueHeaders"].pop("Idempotency-Key", None)
    else:
        event["headers"]["Idempotency-Key"] = idem
    return invoke("CreatePaymentIntentFunction", event)


def confirm(intent_id: str, secret: str | None, card: dict[str, Any] | None = None, *, via_query: bool = False,
            email: str | None = "john@example.com", idem: str | None = None):
    payload: dict[str, Any] = {"card": {**CARD, **(card or {})}}
    if email:
        payload["customer_email"] = email
    event = load_event("public-payment-intents-confirm", path_id=intent_id, body=payload,
                       query={"client_secret": secret} if via_query and secret else {})
    if via_query or secret is None:
        event["headers"].pop("X-Client-Secret")
        event["multiValueHeaders"].pop("X-Client-Secret")
    else:
        event["headers"]["X-Client-Secret"] = secret
    if idem:
        event["headers"]["Idempotency-Key"] = idem
    return invoke("ConfirmPaymentIntentFunction", event)


def get(key: str, intent_id: str):
    return invoke("GetPaymentIntentFunction", load_event("payment-intents-get", key=key, path_id=intent_id))


def get_public(intent_id: str):
    return invoke("GetPublicPaymentIntentFunction", load_event("public-payment-intents-get", path_id=intent_id))


def cancel(key: str, intent_id: str):
    return invoke("CancelPaymentIntentFunction", load_event("payment-intents-cancel", key=key, path_id=intent_id))


def list_intents(key: str, **query: str):
    return invoke("ListPaymentIntentsFunction", load_event("payment-intents-list", key=key, query=query))


# ---------------------------------------------------------------- the hosted page and the 3-D Secure test page

CHALLENGE, FRICTIONLESS, CHALLENGE_DECLINED = "4000002760003184", "4000000000003220", "4000008400001629"


class Html:
    """An answer of the page function: HTML or a redirect, not the JSON envelope."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.status = raw["statusCode"]
        self.headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        for k, vs in (raw.get("multiValueHeaders") or {}).items():
            self.headers[k.lower()] = vs[-1]
        self.text = raw.get("body") or ""

    @property
    def location(self) -> str:
        return self.headers["location"]


def invoke_page(event: dict[str, Any]) -> Html:
    import time
    import uuid

    from tahsil_local.gateway import LambdaContext
    from tests.support.lambdas import handler_of

    context = LambdaContext("CheckoutPageFunction", 512, str(uuid.uuid4()), deadline=time.monotonic() + 15)
    return Html(handler_of("CheckoutPageFunction")(event, context))


def hosted_page(url: str) -> Html:
    """GET a hosted checkout URL (``.../checkout/pi_...?client_secret=...``) as the browser would."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    return invoke_page(load_event("checkout-page", path_id=parts.path.rsplit("/", 1)[1],
                                  query=dict(parse_qsl(parts.query))))


def bank_url(next_action: dict[str, Any], client_secret: str) -> str:
    """Where the hosted page's script sends the browser: next_action's url with the client secret added."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(next_action["redirect_to_url"]["url"])
    query = [*parse_qsl(parts.query), ("client_secret", client_secret)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def bank_page(url: str) -> Html:
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    return invoke_page(load_event("payments-authenticate-page", path_id=parts.path.rsplit("/", 1)[1],
                                  query=dict(parse_qsl(parts.query))))


def bank_return(url: str, result: str) -> Html:
    """Open the test page at ``url`` and press Complete or Fail: its form's hidden fields are posted back."""
    import re
    from urllib.parse import urlencode, urlsplit

    shown = bank_page(url)
    assert shown.status == 200, shown.text
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', shown.text)
    event = load_event("payments-authenticate-return", path_id=urlsplit(url).path.rsplit("/", 1)[1])
    event["body"] = urlencode([(k, html_unescape(v)) for k, v in fields] + [("result", result)])
    return invoke_page(event)


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def stored_events(object_id: str) -> list[str]:
    """The outbox's events of one object (a payment or an intent), in their sequence."""
    from tahsil.kernel.events import payload_of
    from tahsil.store import dal

    client = dal._ddb()
    found = []
    for chunk in client.get_paginator("scan").paginate(TableName=dal.payments_table()):
        for raw in chunk["Items"]:
            item = dal.load(raw)
            if item["pk"].startswith(("EVTS#", "EVT#")) and item.get("object_id") == object_id:
                found.append(payload_of(item))
    return [e["type"] for e in sorted(found, key=lambda e: e["sequence"])]
