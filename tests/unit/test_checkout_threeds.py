"""3-D Secure in the hosted checkout flow (test mode): a payment intent's card that needs a challenge.

Handlers invoked with events/ samples, moto in-process. The browser's part is played as the hosted page's
script plays it: confirm, follow ``next_action`` with the client secret added, press Complete or Fail on the
test page, follow the 303.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.intents import (
    CHALLENGE,
    CHALLENGE_DECLINED,
    DECLINED,
    FRICTIONLESS,
    bank_page,
    bank_return,
    bank_url,
    cancel,
    confirm,
    create,
    get,
    get_public,
    hosted_page,
    intent_body,
    stored_events,
)
from tests.support.payments import get as get_payment
from tests.support.payments import run_wheel, table_items

BASE = "https://abc123.execute-api.us-east-1.amazonaws.com/dev"  # the API's own address in the events/ samples


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


@pytest.fixture
def intent(sk: str) -> dict[str, Any]:
    answer = create(sk)
    assert answer.status == 201, answer.body
    return answer.data


def _challenge(intent: dict[str, Any], card: str = CHALLENGE) -> dict[str, Any]:
    """Confirm with a card that needs a challenge: the answer's data."""
    answer = confirm(intent["id"], intent["client_secret"], {"number": card})
    assert answer.status == 200, answer.body
    return answer.data


def _success_url(intent_id: str) -> str:
    return f"https://shop.example/order/success?session_id={intent_id}&payment_intent={intent_id}"


def _hosted(intent: dict[str, Any]) -> str:
    return f"{BASE}/checkout/{intent['id']}?client_secret={intent['client_secret']}"


def _same_url(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc, pa.path) == (pb.scheme, pb.netloc, pb.path) and parse_qs(pa.query) == parse_qs(pb.query)


@pytest.mark.parametrize("capture_method", ["automatic", "manual"])
def test_a_completed_challenge_pays_the_intent_and_lands_on_its_success_url(sk: str, capture_method: str) -> None:
    intent = create(sk, intent_body(capture_method=capture_method)).data
    data = _challenge(intent)
    assert data["status"] == "requires_action" and data["payment_status"] == "requires_action"
    action = data["next_action"]
    assert action["type"] == "redirect_to_url"
    assert action["redirect_to_url"]["url"].startswith(f"{BASE}/checkout/authenticate/{data['payment_id']}?token=")
    assert action["redirect_to_url"]["return_url"] == f"{BASE}/checkout/{intent['id']}"
    assert data["redirect_url"] == action["redirect_to_url"]["url"]  # a client that follows redirect_url authenticates
    # Meanwhile: the merchant, the public read and the hosted page all say the customer is at their bank.
    waiting = get(sk, intent["id"]).data
    assert waiting["status"] == "requires_action" and waiting["payment_id"] == data["payment_id"]
    assert waiting["payment_status"] == "requires_action" and waiting["attempts"] == 0
    assert get_public(intent["id"]).data["status"] == "requires_action"
    shown = hosted_page(_hosted(intent))
    assert shown.status == 200 and "Confirm this payment with your bank" in shown.text
    assert f'href="authenticate/{data["payment_id"]}?token=' in shown.text  # on to the bank's page, relative

    url = bank_url(action, intent["client_secret"])
    page = bank_page(url)
    assert page.status == 200 and 'name="client_secret"' in page.text
    # Browsers check form-action on the form's redirect too: the shop's origin is allowed, no script is.
    csp = page.headers["content-security-policy"]
    form_action = next(d for d in csp.split("; ") if d.startswith("form-action ")).split()[1:]
    assert "'self'" in form_action and "https://shop.example" in form_action and "script-src" not in csp
    back = bank_return(url, "complete")
    assert back.status == 303 and _same_url(back.location, _success_url(intent["id"]))

    paid = get(sk, intent["id"]).data
    expected = "captured" if capture_method == "automatic" else "authorized"
    assert paid["status"] == "succeeded" and paid["payment_id"] == data["payment_id"]
    assert paid["payment_status"] == expected and paid["succeeded_at"] and paid["last_payment_error"] is None
    assert paid["amount_captured"] == (9999 if capture_method == "automatic" else 0)
    payment = get_payment(sk, data["payment_id"]).data
    assert payment["status"] == expected and payment["three_d_secure"]["liability_shift"] is True
    # The webhooks: payment.requires_action, then the usual events, each once.
    assert stored_events(data["payment_id"]) == ["payment.requires_action", f"payment.{expected}"]
    assert stored_events(intent["id"]) == ["payment_intent.created", "payment_intent.requires_action",
                                           "payment_intent.succeeded"]
    # The hosted page now shows the paid notice; the client secret was never stored anywhere.
    assert 'data-status="succeeded"' in hosted_page(_hosted(intent)).text
    assert intent["client_secret"] not in json.dumps(table_items(), default=str)


def test_a_failed_challenge_counts_an_attempt_and_the_customer_tries_again_with_another_card(
        sk: str, intent: dict[str, Any]) -> None:
    data = _challenge(intent)
    back = bank_return(bank_url(data["next_action"], intent["client_secret"]), "fail")
    assert back.status == 303 and _same_url(back.location, _hosted(intent))  # back on the hosted page
    after = get(sk, intent["id"]).data
    assert after["status"] == "created" and after["attempts"] == 1 and after["remaining_attempts"] == 4
    assert after["payment_id"] is None and after["payment_status"] is None
    assert after["last_payment_error"] == {"code": "authentication_failed", "message": "card declined: authentication failed",
                                           "payment_id": data["payment_id"]}
    assert get_payment(sk, data["payment_id"]).data["decline_code"] == "authentication_failed"
    page = hosted_page(back.location)
    assert page.status == 200 and 'id="checkout-form"' in page.text
    assert "Your last attempt was declined: authentication failed. You have 4 attempts left." in page.text

    retry = confirm(intent["id"], intent["client_secret"])  # 4242: approved
    assert retry.status == 200 and retry.data["status"] == "succeeded" and "next_action" not in retry.data
    paid = get(sk, intent["id"]).data
    assert paid["status"] == "succeeded" and paid["payment_id"] == retry.data["payment_id"] and paid["attempts"] == 1
    assert stored_events(intent["id"]) == ["payment_intent.created", "payment_intent.requires_action",
                                           "payment_intent.payment_failed", "payment_intent.succeeded"]
    assert stored_events(data["payment_id"]) == ["payment.requires_action", "payment.failed"]


def test_the_frictionless_card_pays_at_once(sk: str, intent: dict[str, Any]) -> None:
    answer = confirm(intent["id"], intent["client_secret"], {"number": FRICTIONLESS})
    assert answer.status == 200 and answer.data["status"] == "succeeded" and answer.data.get("next_action") is None
    assert _same_url(answer.data["redirect_url"], _success_url(intent["id"]))
    payment = get_payment(sk, answer.data["payment_id"]).data
    assert payment["status"] == "captured" and payment["three_d_secure"]["flow"] == "frictionless"
    assert stored_events(intent["id"]) == ["payment_intent.created", "payment_intent.succeeded"]
    assert stored_events(answer.data["payment_id"]) == ["payment.captured"]


def test_the_issuer_may_still_decline_after_a_completed_challenge(sk: str, intent: dict[str, Any]) -> None:
    data = _challenge(intent, CHALLENGE_DECLINED)
    back = bank_return(bank_url(data["next_action"], intent["client_secret"]), "complete")
    assert back.status == 303 and _same_url(back.location, _hosted(intent))
    after = get(sk, intent["id"]).data
    assert after["status"] == "created" and after["attempts"] == 1
    assert after["last_payment_error"]["code"] == "05" and after["last_payment_error"]["payment_id"] == data["payment_id"]
    payment = get_payment(sk, data["payment_id"]).data
    assert payment["status"] == "failed" and payment["three_d_secure"]["result"] == "authenticated"
    assert stored_events(intent["id"])[-1] == "payment_intent.payment_failed"


def test_a_refreshed_or_doubled_return_settles_the_intent_once(sk: str, intent: dict[str, Any]) -> None:
    from tahsil.payments import challenge
    from tahsil.store import dal

    data = _challenge(intent)
    stale = dal.get(dal.payments_table(), f"PAY#{data['payment_id']}", "PAY")  # read before the first return lands
    url = bank_url(data["next_action"], intent["client_secret"])
    first = bank_return(url, "complete")
    again = bank_return(url, "fail")  # a refresh (or the other button, in another tab): nothing more
    late = challenge.complete(stale, "complete", intent["client_secret"])  # a return that read before the first wrote
    assert first.location == again.location == late
    after = get(sk, intent["id"]).data
    assert after["status"] == "succeeded" and after["attempts"] == 0
    assert get_payment(sk, data["payment_id"]).data["status"] == "captured"
    assert stored_events(intent["id"]) == ["payment_intent.created", "payment_intent.requires_action",
                                           "payment_intent.succeeded"]
    assert stored_events(data["payment_id"]) == ["payment.requires_action", "payment.captured"]
    rows = [i for i in table_items() if i.get("payment_id") == data["payment_id"] and i.get("type") in ("sale", "decline")]
    assert [(r["type"], r["status"], r["amount"]) for r in rows] == [("sale", "captured", 9999)]  # charged once


def test_a_return_without_the_client_secret_goes_to_the_cancel_url_and_still_counts(sk: str, intent: dict[str, Any]) -> None:
    data = _challenge(intent)
    back = bank_return(data["next_action"]["redirect_to_url"]["url"], "fail")  # the bare url: no client secret
    assert back.status == 303 and back.location == "https://shop.example/order/cancel"
    assert get(sk, intent["id"]).data["attempts"] == 1


def test_the_intent_waits_for_the_bank_cancel_and_confirm_are_409(sk: str, intent: dict[str, Any]) -> None:
    _challenge(intent)
    refused = cancel(sk, intent["id"])
    assert refused.status == 409 and refused.error["status"] == "requires_action"
    again = confirm(intent["id"], intent["client_secret"])
    assert again.status == 409
    assert get(sk, intent["id"]).data["status"] == "requires_action"


def test_a_failed_challenge_on_the_last_attempt_locks_the_intent(sk: str, intent: dict[str, Any]) -> None:
    for _ in range(4):
        assert confirm(intent["id"], intent["client_secret"], {"number": DECLINED}).status == 402
    data = _challenge(intent)
    back = bank_return(bank_url(data["next_action"], intent["client_secret"]), "fail")
    locked = get(sk, intent["id"]).data
    assert locked["status"] == "locked" and locked["remaining_attempts"] == 0
    page = hosted_page(back.location)
    assert 'data-status="locked"' in page.text


def test_a_challenge_nobody_finishes_fails_the_attempt_on_the_timer_wheel(
        sk: str, intent: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.kernel import clock
    from tahsil.payments import expiry

    data = _challenge(intent)
    payment = get_payment(sk, data["payment_id"]).data
    waiting = get(sk, intent["id"]).data
    deadlines = [*expiry.deadlines({"type": "payment.requires_action", "object": payment}),
                 *expiry.deadlines({"type": "payment_intent.created", "object": waiting})]
    assert sorted(d["action"] for d in deadlines) == ["abandon", "expire"]
    buckets = expiry.register(deadlines)
    run_wheel(buckets)  # not yet due
    assert get(sk, intent["id"]).data["status"] == "requires_action"
    real = clock.now
    monkeypatch.setattr(clock, "now", lambda: real() + dt.timedelta(hours=1, minutes=2))
    run_wheel(buckets)
    run_wheel(buckets)  # a retried execution: nothing happens twice
    failed = get_payment(sk, data["payment_id"]).data
    assert failed["status"] == "failed" and failed["decline_code"] == "authentication_abandoned"
    after = get(sk, intent["id"]).data
    assert after["attempts"] == 1 and after["last_payment_error"]["code"] == "authentication_abandoned"
    assert after["status"] == "expired"  # its hour ran out while the customer was away
    assert stored_events(intent["id"]) == ["payment_intent.created", "payment_intent.requires_action",
                                           "payment_intent.payment_failed", "payment_intent.expired"]
    assert stored_events(data["payment_id"]) == ["payment.requires_action", "payment.failed"]
    # The customer coming back late changes nothing, and lands on the hosted page that says it expired.
    back = bank_return(bank_url(data["next_action"], intent["client_secret"]), "complete")
    assert back.status == 303 and 'data-status="expired"' in hosted_page(back.location).text
    assert get(sk, intent["id"]).data["attempts"] == 1


def test_the_intent_lists_by_requires_action(sk: str, intent: dict[str, Any]) -> None:
    from tests.support.intents import list_intents

    other = create(sk).data
    _challenge(intent)
    listed = list_intents(sk, status="requires_action")
    assert listed.status == 200, listed.body
    assert [i["id"] for i in listed.data["payment_intents"]] == [intent["id"]] and other["id"] != intent["id"]


def test_the_webhooks_come_in_order_each_once(local: Any, merchant: dict[str, Any], receiver: Any) -> None:
    from tests.support.webhooks import create_endpoint, run_pipeline

    key = merchant["keys"]["test"]["secret"]
    kinds = ["payment.requires_action", "payment.failed", "payment.captured", "payment_intent.requires_action",
             "payment_intent.payment_failed", "payment_intent.succeeded"]
    assert create_endpoint(key, receiver.url, kinds).status == 201
    intent = create(key).data
    data = _challenge(intent)
    run_pipeline()
    bank_return(bank_url(data["next_action"], intent["client_secret"]), "fail")
    run_pipeline()
    retry = confirm(intent["id"], intent["client_secret"])
    run_pipeline()
    run_pipeline()  # a second pass of the pollers sends nothing more
    sent = [json.loads(r["body"]) for r in receiver.delivered()]
    # Each step's two events (one transaction) arrive in that step's pass, in either order.
    steps = [{(e["type"], e["data"]["object"]["id"]) for e in sent[i:i + 2]} for i in (0, 2, 4)]
    assert steps == [
        {("payment.requires_action", data["payment_id"]), ("payment_intent.requires_action", intent["id"])},
        {("payment.failed", data["payment_id"]), ("payment_intent.payment_failed", intent["id"])},
        {("payment.captured", retry.data["payment_id"]), ("payment_intent.succeeded", intent["id"])},
    ]
    assert len({e["id"] for e in sent}) == len(sent) == 6
    waiting = next(e for e in sent if e["type"] == "payment_intent.requires_action")["data"]["object"]
    assert waiting["status"] == "requires_action" and waiting["payment_id"] == data["payment_id"]
    failed = next(e for e in sent if e["type"] == "payment_intent.payment_failed")["data"]["object"]
    assert failed["status"] == "created" and failed["last_payment_error"]["code"] == "authentication_failed"


def test_the_test_page_lets_its_form_reach_a_payments_return_url(sk: str) -> None:
    from tests.support.payments import authorize, body

    pay = authorize(sk, body(card={"number": CHALLENGE}, return_url="https://shop.example/order/7")).data
    page = bank_page(pay["next_action"]["redirect_to_url"]["url"])
    csp = page.headers["content-security-policy"]
    assert "form-action 'self' https://shop.example;" in csp and 'name="client_secret"' not in page.text
