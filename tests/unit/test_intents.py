"""Payment intents and the hosted checkout page: handlers invoked with events/, moto in-process."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tahsil.kernel.events import payload_of, payload_text
from tests.support.intents import DECLINED, cancel, confirm, create, get, get_public, intent_body, list_intents
from tests.support.lambdas import handler_of, invoke, load_event


class Html:
    """An answer of the page function: HTML or text, not the JSON envelope."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.status = raw["statusCode"]
        self.headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        for k, vs in (raw.get("multiValueHeaders") or {}).items():
            self.headers[k.lower()] = vs[-1]
        self.text = raw.get("body") or ""


def invoke_page(event: dict[str, Any]) -> Html:
    import time
    import uuid

    from tahsil_local.gateway import LambdaContext

    context = LambdaContext("CheckoutPageFunction", 512, str(uuid.uuid4()), deadline=time.monotonic() + 15)
    return Html(handler_of("CheckoutPageFunction")(event, context))


def page(intent_id: str, secret: str | None) -> Html:
    return invoke_page(load_event("checkout-page", path_id=intent_id, query={"client_secret": secret} if secret else {}))


def rows(prefix: str) -> list[dict[str, Any]]:
    from tahsil.store import dal

    client = dal._ddb()
    items: list[dict[str, Any]] = []
    for chunk in client.get_paginator("scan").paginate(TableName=dal.payments_table()):
        items.extend(dal.load(i) for i in chunk["Items"])
    return [i for i in items if i["pk"].startswith(prefix + "#")]


def events_of(object_id: str) -> list[dict[str, Any]]:
    found = [payload_of(r) for r in rows("EVTS") if r["object_id"] == object_id]
    return sorted(found, key=lambda e: e["sequence"])


def set_expired(intent_id: str) -> None:
    from tahsil.store import dal

    dal.update(dal.payments_table(), f"PI#{intent_id}", "PI", "SET expires_at = :past", vals=dal.values(past="2020-01-01T00:00:00Z"))


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


@pytest.fixture
def intent(sk: str) -> dict[str, Any]:
    answer = create(sk)
    assert answer.status == 201, answer.body
    return answer.data


# ------------------------------------------------------------------ create


def test_create_answers_201_with_id_secret_checkout_url_and_one_hour_expiry(sk: str) -> None:
    answer = create(sk)
    assert answer.status == 201
    data = answer.data
    assert data["id"].startswith("pi_") and data["object"] == "payment_intent"
    assert data["status"] == "created" and data["attempts"] == 0 and data["remaining_attempts"] == 5
    assert data["client_secret"].startswith(data["id"] + "_secret_")
    assert len(data["client_secret"].split("_secret_")[1]) >= 22  # >= 128 bits of base62
    url = urlsplit(data["checkout_url"])
    # No PUBLIC_BASE_URL: the API's own address from the request, stage included.
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"https://abc123.execute-api.us-east-1.amazonaws.com/dev/checkout/{data['id']}"
    assert parse_qs(url.query) == {"client_secret": [data["client_secret"]]}
    from tahsil.kernel import clock

    assert clock.parse(data["expires_at"]) - clock.parse(data["created_at"]) == clock.dt.timedelta(hours=1)
    assert data["success_url"].endswith("{CHECKOUT_SESSION_ID}")  # echoed as given; filled in when redirecting


def test_the_client_secret_is_stored_only_as_a_keyed_hash_and_shown_only_at_creation(sk: str, intent: dict[str, Any]) -> None:
    secret = intent["client_secret"]
    assert rows("EVTS")  # payment_intent.created: the events are read where they are
    events_text = json.dumps(rows("EVTS"), default=lambda raw: payload_text({"payload": raw}))  # payloads decompressed
    assert secret not in json.dumps(rows("PI")) and secret not in events_text
    stored = rows("PI")[0]
    from tahsil.store import crypto

    assert crypto.same_secret(stored["secret_hash"], secret)
    assert "client_secret" not in get(sk, intent["id"]).data
    assert "client_secret" not in get_public(intent["id"]).data
    assert [e["type"] for e in events_of(intent["id"])] == ["payment_intent.created"]


def test_public_base_url_wins_when_set(sk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.kernel import config

    monkeypatch.setenv("PUBLIC_BASE_URL", "https://pay.example.com/")
    config.settings.cache_clear()
    try:
        url = create(sk).data["checkout_url"]
    finally:
        config.settings.cache_clear()
    assert url.startswith("https://pay.example.com/checkout/pi_")


@pytest.mark.parametrize(
    ("over", "param"),
    [
        ({"success_url": "http://shop.example/ok"}, "success_url"),
        ({"success_url": "javascript:alert(1)"}, "success_url"),
        ({"success_url": "ftp://shop.example/ok"}, "success_url"),
        ({"success_url": "/relative/path"}, "success_url"),
        ({"success_url": "https://user:pw@shop.example/ok"}, "success_url"),
        ({"success_url": "https://shop.example/" + "a" * 2040}, "success_url"),
        ({"success_url": "https://shop.example/a b"}, "success_url"),
        ({"success_url": "http://localhost.evil.example/ok"}, "success_url"),
        ({"success_url": None}, "success_url"),
        ({"cancel_url": "http://shop.example/cancel"}, "cancel_url"),
        ({"amount": 0}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"capture_method": "later"}, "capture_method"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"colour": "red"}, "colour"),
        ({"metadata": {f"k{i}": "v" for i in range(49)}}, "metadata"),
    ],
)
def test_bad_fields_are_400_naming_the_field(sk: str, over: dict[str, Any], param: str) -> None:
    answer = create(sk, intent_body(**over))
    assert answer.status == 400, answer.body
    assert answer.error["param"] == param


@pytest.mark.parametrize("url", ["http://localhost/ok", "http://localhost:8080/ok", "http://127.0.0.1:5000/ok?x=1",
                                 "https://shop.example/ok#top"])
def test_https_and_local_http_urls_are_accepted(sk: str, url: str) -> None:
    assert create(sk, intent_body(success_url=url, cancel_url=None)).status == 201


def test_cancel_url_defaults_to_success_url_and_the_placeholder_is_filled_in(sk: str) -> None:
    from tahsil.payments import intents

    created = create(sk, intent_body(cancel_url=None)).data
    shown = intents.checkout_state(created["id"], created["client_secret"])  # the page's view, for the secret's holder
    assert shown is not None
    assert shown["cancel_url"] == f"https://shop.example/order/success?session_id={created['id']}"


def test_create_needs_a_secret_key(merchant: dict[str, Any]) -> None:
    assert create("").status == 401
    assert create(merchant["keys"]["test"]["publishable"]).status in (401, 403)  # publishable keys: public endpoints only


# ------------------------------------------------------------------ public read


def test_public_read_returns_only_what_the_page_needs(intent: dict[str, Any]) -> None:
    answer = get_public(intent["id"])
    assert answer.status == 200
    assert answer.headers["cache-control"] == "no-store"
    data = answer.data
    # exactly what docs/decisions/security.md ("Public endpoints") lists: no return URLs, which carry order data
    assert set(data) == {"id", "object", "status", "amount", "currency", "merchant_name", "description",
                         "remaining_attempts", "payment_id", "livemode", "expires_at"}
    assert "shop.example" not in json.dumps(data)
    assert data["payment_id"] is None
    assert data["merchant_name"] == "Test Store"
    text = json.dumps(data)
    assert "john@example.com" not in text and "c-1" not in text and "12345\"" not in text


def test_public_read_of_an_unknown_or_malformed_id(intent: dict[str, Any]) -> None:
    assert get_public("pi_" + "x" * 20).status == 404
    assert get_public("nope").status == 400


# ------------------------------------------------------------------ confirm


def test_confirm_with_4242_captures_and_returns_payment_id_and_redirect_url(sk: str, intent: dict[str, Any]) -> None:
    answer = confirm(intent["id"], intent["client_secret"])
    assert answer.status == 200, answer.body
    data = answer.data
    assert data["status"] == "succeeded" and data["payment_status"] == "captured"
    assert data["payment_id"].startswith("pay_")
    assert data["redirect_url"] == (f"https://shop.example/order/success?session_id={intent['id']}"
                                    f"&payment_intent={intent['id']}")
    assert "client_secret" not in data and "customer_email" not in data

    merchant_view = get(sk, intent["id"]).data
    assert merchant_view["status"] == "succeeded" and merchant_view["payment_id"] == data["payment_id"]
    assert merchant_view["amount_captured"] == 9999
    payment = invoke("GetPaymentFunction", load_event("payments-get", key=sk, path_id=data["payment_id"])).data
    assert payment["status"] == "captured" and payment["amount"] == 9999
    assert payment["metadata"] == {"cart": "c-1", "payment_intent": intent["id"], "order_id": "12345"}
    assert payment["customer"] == {"email": "john@example.com", "name": "John Doe"}
    assert payment["description"] == "Order #12345 - Premium Plan"

    intent_events = events_of(intent["id"])
    assert [(e["type"], e["sequence"]) for e in intent_events] == [("payment_intent.created", 1),
                                                                    ("payment_intent.succeeded", 2)]
    assert intent_events[1]["data"]["object"]["status"] == "succeeded"
    assert intent_events[1]["data"]["previous_attributes"]["status"] == "created"
    assert [e["type"] for e in events_of(data["payment_id"])] == ["payment.captured"]


def test_the_client_secret_may_come_in_the_query_string(intent: dict[str, Any]) -> None:
    assert confirm(intent["id"], intent["client_secret"], via_query=True).status == 200


@pytest.mark.parametrize("secret", [None, "", "pi_wrong_secret_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "x" * 5000])
def test_a_missing_or_wrong_client_secret_is_401_and_charges_nothing(intent: dict[str, Any], secret: str | None) -> None:
    answer = confirm(intent["id"], secret)
    assert answer.status == 401
    assert answer.error["code"] == "INVALID_CLIENT_SECRET"
    assert rows("PAY") == []


def test_confirm_checks_the_client_secret_before_telling_whether_the_intent_is_live(merchant: dict[str, Any]) -> None:
    live = create(merchant["keys"]["live"]["secret"]).data
    test = create(merchant["keys"]["test"]["secret"]).data
    for made in (live, test):
        for card in ({"number": "4242424242424242"}, {"number": "4000000000000077"}):  # a test card, and another
            answer = confirm(made["id"], "pi_wrong_secret_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", card)
            assert (answer.status, answer.error["code"]) == (401, "INVALID_CLIENT_SECRET")
    # with the secret, a live intent says what live mode says (a test card is declined, no connector is a 403)
    assert confirm(live["id"], live["client_secret"]).status == 402


def test_another_intents_secret_does_not_open_this_one(sk: str, intent: dict[str, Any]) -> None:
    other = create(sk).data
    assert confirm(intent["id"], other["client_secret"]).status == 401


def test_confirm_of_an_unknown_intent_is_404(intent: dict[str, Any]) -> None:
    assert confirm("pi_" + "y" * 20, intent["client_secret"]).status == 404


def test_a_bad_card_is_400_and_is_not_an_attempt(sk: str, intent: dict[str, Any]) -> None:
    answer = confirm(intent["id"], intent["client_secret"], {"number": "4242424242424241"})
    assert answer.status == 400 and answer.error["param"] == "card.number"
    assert get(sk, intent["id"]).data["attempts"] == 0


def test_a_decline_is_402_with_remaining_attempts_and_is_counted_once(sk: str, intent: dict[str, Any]) -> None:
    answer = confirm(intent["id"], intent["client_secret"], {"number": "4000000000009995"})
    assert answer.status == 402
    assert answer.error["code"] == "PAYMENT_DECLINED"
    assert answer.error["remaining_attempts"] == 4
    assert answer.error["decline_code"] == "51"
    assert answer.error["message"] == "card declined: insufficient funds"
    assert "fraud_score" not in answer.error
    stored = get(sk, intent["id"]).data
    assert stored["status"] == "created" and stored["attempts"] == 1
    assert stored["last_payment_error"]["code"] == "51"
    failed = [r for r in rows("PAY")]
    assert len(failed) == 1 and failed[0]["status"] == "failed"
    assert [e["type"] for e in events_of(intent["id"])] == ["payment_intent.created", "payment_intent.payment_failed"]


def test_fraud_declines_do_not_tell_the_browser_the_score(intent: dict[str, Any]) -> None:
    answer = confirm(intent["id"], intent["client_secret"], {"number": "4000000000000259"})
    assert answer.status == 402
    assert answer.error["message"] == "card declined: the payment could not be approved"
    assert "score" not in json.dumps(answer.error)


def test_five_declines_lock_the_intent_and_then_410_max_attempts(sk: str, intent: dict[str, Any]) -> None:
    remaining = [confirm(intent["id"], intent["client_secret"], {"number": DECLINED}).error["remaining_attempts"]
                 for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    assert get(sk, intent["id"]).data["status"] == "locked"
    answer = confirm(intent["id"], intent["client_secret"])  # even a good card
    assert answer.status == 410 and answer.error["code"] == "MAX_ATTEMPTS_REACHED"
    assert len(rows("PAY")) == 5 and all(r["status"] == "failed" for r in rows("PAY"))
    assert get_public(intent["id"]).data["remaining_attempts"] == 0


def test_an_expired_intent_is_410_intent_expired_and_reads_expired(sk: str, intent: dict[str, Any]) -> None:
    set_expired(intent["id"])
    answer = confirm(intent["id"], intent["client_secret"])
    assert answer.status == 410 and answer.error["code"] == "INTENT_EXPIRED"
    assert get(sk, intent["id"]).data["status"] == "expired"
    assert get_public(intent["id"]).data["status"] == "expired"
    assert cancel(sk, intent["id"]).status == 410
    assert rows("PAY") == []


def test_a_second_confirm_after_success_is_409_and_charges_nothing(intent: dict[str, Any]) -> None:
    first = confirm(intent["id"], intent["client_secret"])
    second = confirm(intent["id"], intent["client_secret"], {"number": "5555555555554444"})
    assert first.status == 200
    assert second.status == 409 and second.error["status"] == "succeeded"
    assert len(rows("PAY")) == 1


def test_a_confirm_that_loses_the_race_writes_nothing_and_retries(intent: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Another request changes the intent between our read and our write: our transaction fails whole."""
    from tahsil.payments import lifecycle
    from tahsil.store import dal

    real = lifecycle.create
    calls: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # someone else's decline lands first
            dal.update(dal.payments_table(), f"PI#{intent['id']}", "PI", "SET version = version + :one, attempts = :one",
                       vals=dal.values(one=1))
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "create", racing)
    answer = confirm(intent["id"], intent["client_secret"])
    assert answer.status == 200 and len(calls) == 2
    assert len(rows("PAY")) == 1  # the first try's payment was never written
    assert len([r for r in rows("TXN")]) == 1


def test_a_confirm_that_loses_to_a_payment_is_409(intent: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.payments import lifecycle
    from tahsil.store import dal

    real = lifecycle.create

    def racing(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(lifecycle, "create", real)
        dal.update(dal.payments_table(), f"PI#{intent['id']}", "PI", "SET version = version + :one, #s = :done",
                   names={"#s": "status"}, vals=dal.values(one=1, done="succeeded"))
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "create", racing)
    answer = confirm(intent["id"], intent["client_secret"])
    assert answer.status == 409
    assert rows("PAY") == []


def test_manual_capture_authorizes_and_the_intent_shows_the_later_capture(sk: str) -> None:
    created = create(sk, intent_body(capture_method="manual")).data
    confirmed = confirm(created["id"], created["client_secret"]).data
    assert confirmed["status"] == "succeeded" and confirmed["payment_status"] == "authorized"
    before = get(sk, created["id"]).data
    assert before["payment_status"] == "authorized" and before["amount_captured"] == 0
    captured = invoke("CapturePaymentFunction", load_event("payments-capture", key=sk, path_id=confirmed["payment_id"],
                                                           body={"amount": 5000}))
    assert captured.status == 200
    after = get(sk, created["id"]).data
    assert after["status"] == "succeeded"
    assert after["payment_status"] == "captured" and after["amount_captured"] == 5000
    listed = list_intents(sk).data["payment_intents"][0]
    assert listed["id"] == created["id"] and listed["payment_status"] == "captured"


def test_customer_email_given_at_confirm_fills_an_empty_one(sk: str) -> None:
    created = create(sk, intent_body(customer_email=None)).data
    assert confirm(created["id"], created["client_secret"], email="jane@example.com").status == 200
    assert get(sk, created["id"]).data["customer_email"] == "jane@example.com"


def test_an_idempotency_key_from_the_browser_never_collides_with_the_merchants(sk: str) -> None:
    created = create(sk, idem="order-1").data
    answer = confirm(created["id"], created["client_secret"], idem="order-1")
    assert answer.status == 200
    replay = confirm(created["id"], created["client_secret"], idem="order-1")
    assert replay.status == 200 and replay.headers.get("idempotent-replayed") == "true"
    assert replay.data["payment_id"] == answer.data["payment_id"]


# ------------------------------------------------------------------ merchant reads, cancel, isolation


def test_cancel_then_confirm_is_409_and_cancel_is_repeatable(sk: str, intent: dict[str, Any]) -> None:
    first = cancel(sk, intent["id"])
    assert first.status == 200 and first.data["status"] == "canceled" and first.data["canceled_at"]
    again = cancel(sk, intent["id"])
    assert again.status == 200 and again.data["status"] == "canceled"
    answer = confirm(intent["id"], intent["client_secret"])
    assert answer.status == 409 and answer.error["status"] == "canceled"
    assert [e["type"] for e in events_of(intent["id"])] == ["payment_intent.created", "payment_intent.canceled"]


def test_public_read_shows_the_payment_id_once_paid(intent: dict[str, Any]) -> None:
    paid = confirm(intent["id"], intent["client_secret"]).data
    shown = get_public(intent["id"]).data
    assert (shown["status"], shown["payment_id"]) == ("succeeded", paid["payment_id"])


def test_failed_attempts_do_not_show_a_payment_id_publicly(intent: dict[str, Any]) -> None:
    assert confirm(intent["id"], intent["client_secret"], {"number": "4000000000009995"}).status == 402
    assert get_public(intent["id"]).data["payment_id"] is None


@pytest.mark.parametrize(("success_url", "expected_query"), [
    ("https://shop.example/done?payment_intent={CHECKOUT_SESSION_ID}", "payment_intent={id}"),
    ("https://shop.example/done?order=7&payment_intent={CHECKOUT_SESSION_ID}", "order=7&payment_intent={id}"),
    ("https://shop.example/done?order=7", "order=7&payment_intent={id}"),
    ("https://shop.example/done", "payment_intent={id}"),
])
def test_redirect_url_adds_payment_intent_only_when_absent(sk: str, success_url: str, expected_query: str) -> None:
    made = create(sk, intent_body(success_url=success_url)).data
    answer = confirm(made["id"], made["client_secret"]).data
    assert answer["redirect_url"].split("?", 1)[1] == expected_query.format(id=made["id"])


def test_cancel_answers_the_seed_message_beside_data(sk: str, intent: dict[str, Any]) -> None:
    answer = cancel(sk, intent["id"])
    assert answer.status == 200
    assert answer.body["message"] == "payment intent canceled" and answer.data["status"] == "canceled"


def test_cancel_of_a_paid_intent_is_400(sk: str, intent: dict[str, Any]) -> None:
    confirm(intent["id"], intent["client_secret"])
    answer = cancel(sk, intent["id"])
    assert answer.status == 400
    assert answer.error["code"] == "INTENT_COMPLETED" and answer.error["message"] == "cannot cancel completed payment intent"


def test_a_locked_intent_can_be_canceled(sk: str, intent: dict[str, Any]) -> None:
    for _ in range(5):
        confirm(intent["id"], intent["client_secret"], {"number": DECLINED})
    assert cancel(sk, intent["id"]).data["status"] == "canceled"


def test_other_merchants_and_modes_see_a_404(merchant: dict[str, Any], intent: dict[str, Any]) -> None:
    from tahsil.console import ops

    other = ops.create_merchant("Other Store")
    for key in (other["keys"]["test"]["secret"], merchant["keys"]["live"]["secret"]):
        assert get(key, intent["id"]).status == 404
        assert cancel(key, intent["id"]).status == 404
    assert get(merchant["keys"]["test"]["secret"], "pi_" + "z" * 20).status == 404


def test_list_pages_newest_first_and_filters_by_status(sk: str) -> None:
    ids = [create(sk).data["id"] for _ in range(3)]
    first = list_intents(sk, limit="2").data
    assert [i["id"] for i in first["payment_intents"]] == ids[::-1][:2]
    assert first["has_more"] is True
    rest = list_intents(sk, limit="2", starting_after=first["next_starting_after"]).data
    assert [i["id"] for i in rest["payment_intents"]] == [ids[0]] and rest["has_more"] is False
    cancel(sk, ids[1])
    set_expired(ids[2])
    assert [i["id"] for i in list_intents(sk, status="canceled").data["payment_intents"]] == [ids[1]]
    assert [i["id"] for i in list_intents(sk, status="expired").data["payment_intents"]] == [ids[2]]
    assert [i["id"] for i in list_intents(sk, status="created").data["payment_intents"]] == [ids[0]]
    assert list_intents(sk, starting_after="pi_" + "q" * 20).status == 400
    assert list_intents(sk, status="paid").status == 400


# ------------------------------------------------------------------ the hosted page


def test_the_page_shows_merchant_amount_and_a_form_under_a_strict_csp(intent: dict[str, Any]) -> None:
    answer = page(intent["id"], intent["client_secret"])
    assert answer.status == 200
    html = answer.text
    assert answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "connect-src 'self'", "form-action 'self'",
                      "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "Test Store" in html and "$99.99" in html and "Order #12345 - Premium Plan" in html
    assert 'id="checkout-form"' in html and 'value="john@example.com"' in html
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all(re.search(r'\ssrc="assets/checkout\.js\?v=\w+"', tag) for tag in scripts)  # no inline script
    assert not re.search(r"\son[a-z]+\s*=", html) and "style=" not in html  # no inline handlers or styles
    assert 'href="https://shop.example/order/cancel"' in html


def test_merchant_text_is_escaped_on_the_page(sk: str) -> None:
    created = create(sk, intent_body(description='<script>alert("x")</script><img src=x onerror=alert(1)>',
                                     cancel_url='https://shop.example/c?a="><script>alert(2)</script>')).data
    html = page(created["id"], created["client_secret"]).text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '"><script>' not in html


@pytest.mark.parametrize("secret", [None, "wrong"])
def test_a_bad_link_shows_the_invalid_page(intent: dict[str, Any], secret: str | None) -> None:
    answer = page(intent["id"], secret)
    assert answer.status == 404
    html = answer.text
    assert "not valid" in html and "Test Store" not in html and "checkout-form" not in html
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_paid_expired_canceled_and_locked_intents_show_a_page_instead_of_a_form(sk: str) -> None:
    paid = create(sk).data
    confirm(paid["id"], paid["client_secret"])
    expired = create(sk).data
    set_expired(expired["id"])
    canceled = create(sk).data
    cancel(sk, canceled["id"])
    locked = create(sk).data
    for _ in range(5):
        confirm(locked["id"], locked["client_secret"], {"number": DECLINED})
    for item, status, words in [(paid, "succeeded", "Payment complete"), (expired, "expired", "expired"),
                                (canceled, "canceled", "canceled"), (locked, "locked", "locked")]:
        answer = page(item["id"], item["client_secret"])
        html = answer.text
        assert answer.status == 200
        assert f'data-status="{status}"' in html and words in html
        assert "checkout-form" not in html
    paid_html = page(paid["id"], paid["client_secret"]).text
    assert f"payment_intent={paid['id']}" in paid_html


def test_assets_are_served_and_unknown_ones_are_404(aws_env: Any) -> None:
    answer = invoke_page(load_event("checkout-asset"))
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "X-Client-Secret" in answer.text
    css = load_event("checkout-asset")
    css["path"], css["pathParameters"] = "/checkout/assets/checkout.css", {"name": "checkout.css"}
    assert invoke_page(css).headers["content-type"].startswith("text/css")
    bad = load_event("checkout-asset")
    bad["path"], bad["pathParameters"] = "/checkout/assets/app.py", {"name": "app.py"}
    assert invoke_page(bad).status == 404


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (9999, "USD", "$99.99"), (123456789, "EUR", "€1,234,567.89"), (5000, "JPY", "¥5,000"),
    (1234567, "IQD", "1,234.567 IQD"), (100, "MAD", "1.00 MAD"), (5, "GBP", "£0.05"),
])
def test_amounts_are_formatted_with_the_currency_minor_units(amount: int, currency: str, text: str) -> None:
    from tahsil.payments.checkout import format_money

    assert format_money(amount, currency) == text
