"""3-D Secure 2 in test mode, as a merchant relies on it: requires_action, the test page, the return (once)."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.connectors import events_of
from tests.support.lambdas import handler_of, invoke, load_event
from tests.support.payments import authorize, body, get

CHALLENGE, FRICTIONLESS, CHALLENGE_DECLINED = "4000002760003184", "4000000000003220", "4000008400001629"
RETURN = "https://shop.example/order/7?x=1"


@pytest.fixture
def sk(merchant: dict[str, Any]) -> str:
    return merchant["keys"]["test"]["secret"]


def _page(url: str) -> tuple[int, str, dict[str, str]]:
    from tahsil_local.gateway import LambdaContext

    parts = urlsplit(url)
    payment_id = parts.path.rsplit("/", 1)[1]
    token = parse_qs(parts.query)["token"][0]
    event = load_event("payments-authenticate-page", path_id=payment_id, query={"token": token})
    raw = handler_of("CheckoutPageFunction")(event, LambdaContext("CheckoutPageFunction", 512,
                                                                         str(uuid.uuid4()), deadline=time.monotonic() + 15))
    headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
    headers |= {k.lower(): vs[-1] for k, vs in (raw.get("multiValueHeaders") or {}).items()}
    return raw["statusCode"], raw["body"], headers


def _return(url: str, result: str) -> Any:
    parts = urlsplit(url)
    payment_id = parts.path.rsplit("/", 1)[1]
    token = parse_qs(parts.query)["token"][0]
    event = load_event("payments-authenticate-return", path_id=payment_id)
    event["body"] = f"token={token}&result={result}"
    from tahsil_local.gateway import LambdaContext

    return handler_of("CheckoutPageFunction")(event, LambdaContext("CheckoutPageFunction", 512,
                                                                          str(uuid.uuid4()), deadline=time.monotonic() + 15))


def _location(raw: dict[str, Any]) -> str:
    headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
    for k, vs in (raw.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = vs[-1]
    return headers["location"]


@pytest.mark.parametrize("sale", [False, True])
def test_a_challenge_card_waits_for_the_shopper_then_completes_once(sk: str, sale: bool) -> None:
    r = authorize(sk, body(card={"number": CHALLENGE}, return_url=RETURN), sale=sale)
    assert r.status == 200, r.body
    pay = r.data
    assert pay["status"] == "requires_action"
    assert pay["three_d_secure"]["flow"] == "challenge" and pay["three_d_secure"]["result"] is None
    action = pay["next_action"]
    assert action["type"] == "redirect_to_url" and action["redirect_to_url"]["return_url"] == RETURN
    url = action["redirect_to_url"]["url"]
    status, html, headers = _page(url)
    assert status == 200 and "Complete" in html and "Fail" in html and "<script" not in html
    assert "script-src" not in headers["content-security-policy"]  # default-src 'none': no script at all
    first = _return(url, "complete")
    assert first["statusCode"] == 303
    location = _location(first)
    assert location.startswith("https://shop.example/order/7?") and parse_qs(urlsplit(location).query) == {
        "x": ["1"], "payment_id": [pay["id"]]}
    done = get(sk, pay["id"]).data
    assert done["status"] == ("captured" if sale else "authorized")
    assert done["three_d_secure"] == {"version": "2.2.0", "flow": "challenge", "result": "authenticated",
                                      "liability_shift": True}
    assert "next_action" not in done
    # a refreshed or doubled return commits nothing more and lands the shopper on the same page
    again = _return(url, "fail")
    assert again["statusCode"] == 303 and _location(again) == location
    assert get(sk, pay["id"]).data["status"] == done["status"]
    final = "payment.captured" if sale else "payment.authorized"
    assert events_of(pay["id"]) == sorted(["payment.requires_action", final])


def test_a_failed_challenge_fails_the_payment_with_authentication_failed(sk: str) -> None:
    pay = authorize(sk, body(card={"number": CHALLENGE}, return_url=RETURN)).data
    _return(pay["next_action"]["redirect_to_url"]["url"], "fail")
    failed = get(sk, pay["id"]).data
    assert failed["status"] == "failed" and failed["decline_code"] == "authentication_failed"
    assert failed["three_d_secure"]["result"] == "failed" and failed["three_d_secure"]["liability_shift"] is False
    assert events_of(pay["id"]) == ["payment.failed", "payment.requires_action"]


def test_the_issuer_may_still_decline_after_a_completed_challenge(sk: str) -> None:
    pay = authorize(sk, body(card={"number": CHALLENGE_DECLINED}, return_url=RETURN)).data
    _return(pay["next_action"]["redirect_to_url"]["url"], "complete")
    failed = get(sk, pay["id"]).data
    assert failed["status"] == "failed" and failed["response_code"] == "05"
    assert failed["three_d_secure"]["result"] == "authenticated"


def test_without_a_return_url_a_card_that_needs_authentication_is_declined_and_nothing_held(sk: str) -> None:
    r = authorize(sk, body(card={"number": CHALLENGE}))
    assert r.status == 402, r.body
    assert r.error["decline_code"] == "authentication_required"
    assert get(sk, r.error["payment_id"]).data["status"] == "failed"


def test_the_frictionless_card_is_authorized_at_once(sk: str) -> None:
    r = authorize(sk, body(card={"number": FRICTIONLESS}))
    assert r.status == 200 and r.data["status"] == "authorized"
    assert r.data["three_d_secure"]["flow"] == "frictionless" and r.data["three_d_secure"]["liability_shift"] is True


def test_seed_cards_are_untouched_and_show_no_authentication(sk: str) -> None:
    r = authorize(sk, body(return_url=RETURN))
    assert r.status == 200 and r.data["status"] == "authorized" and r.data["three_d_secure"] is None


def test_a_wrong_token_or_a_bad_return_url_is_refused(sk: str) -> None:
    r = authorize(sk, body(card={"number": CHALLENGE}, return_url="http://shop.example/x"))
    assert r.status == 400 and r.error["param"] == "return_url"
    pay = authorize(sk, body(card={"number": CHALLENGE}, return_url=RETURN)).data
    url = pay["next_action"]["redirect_to_url"]["url"].split("?")[0] + "?token=wrong"
    assert _page(url)[0] == 404
    assert get(sk, pay["id"]).data["status"] == "requires_action"


def test_the_return_takes_a_form_and_nothing_else(sk: str) -> None:
    pay = authorize(sk, body(card={"number": CHALLENGE}, return_url=RETURN)).data
    url = pay["next_action"]["redirect_to_url"]["url"]
    assert "/checkout/authenticate/" in url
    parts = urlsplit(url)
    event = load_event("payments-authenticate-return", path_id=parts.path.rsplit("/", 1)[1])
    event["headers"]["Content-Type"] = event["multiValueHeaders"]["Content-Type"][0] = "application/json"
    event["multiValueHeaders"]["Content-Type"] = ["application/json"]
    event["body"] = '{"result": "complete"}'
    assert invoke("CheckoutPageFunction", event).status == 415
    assert get(sk, pay["id"]).data["status"] == "requires_action"


def test_a_challenge_nobody_finishes_fails_after_an_hour_on_the_timer_wheel(sk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from tahsil.kernel import clock
    from tahsil.payments import expiry
    from tests.support.payments import run_wheel

    pay = authorize(sk, body(card={"number": CHALLENGE}, return_url=RETURN)).data
    [deadline] = expiry.deadlines({"type": "payment.requires_action", "object": pay})
    assert deadline["action"] == "abandon"
    buckets = expiry.register([deadline])
    run_wheel(buckets)  # not yet due: nothing happens
    assert get(sk, pay["id"]).data["status"] == "requires_action"
    real = clock.now
    monkeypatch.setattr(clock, "now", lambda: real() + dt.timedelta(hours=1, minutes=2))
    run_wheel(buckets)
    run_wheel(buckets)  # a retried execution: nothing happens twice
    failed = get(sk, pay["id"]).data
    assert failed["status"] == "failed" and failed["decline_code"] == "authentication_abandoned"
    assert events_of(pay["id"]) == ["payment.failed", "payment.requires_action"]
    # the shopper coming back late changes nothing
    raw = _return(pay["next_action"]["redirect_to_url"]["url"], "complete")
    assert raw["statusCode"] == 303 and get(sk, pay["id"]).data["status"] == "failed"
