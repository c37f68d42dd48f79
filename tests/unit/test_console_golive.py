"""Go-live: live keys take no payments until an operator approves a review; the checklist reads real records."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.account import IQD, PROFILE
from tests.support.calls import CARD, fresh_card
from tests.support.console import call
from tests.support.golive import SALE, sale
from tests.support.webhooks import Receiver, create_endpoint, run_pipeline


@pytest.fixture
def fresh(aws_env: Any) -> dict[str, Any]:
    """A merchant as `tahsil merchants create` makes one: live payments not approved yet."""
    from tahsil.console import ops

    return ops.create_merchant("New Shop")




@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch, local: Any) -> None:  # noqa: F811
    """Live endpoints must be public https; these tests let a live endpoint be the loopback receiver."""
    from tahsil.webhooks import endpoints, guard

    monkeypatch.setattr(endpoints, "check_url", lambda url, mode: guard.check_url(url, live=False, allow_loopback_http=True))


def keys(m: dict[str, Any]) -> tuple[str, str]:
    return m["keys"]["test"]["secret"], m["keys"]["live"]["secret"]


def checks(key: str) -> dict[str, dict[str, Any]]:
    answer = call("go-live-get", key)
    assert answer.status == 200, answer.body
    return {c["id"]: c for c in answer.data["checks"]}


def make_ready(m: dict[str, Any], receiver: Receiver) -> None:
    """Everything the checklist asks for, done through the API as a merchant would."""
    from tahsil.console import profile

    test, live = keys(m)
    assert call("account-update", test, body=PROFILE).status == 200
    assert call("account-update", live, body={"payout_destination": IQD}).status == 200  # live and the owner's
    profile.verify_payout(m["merchant_id"], operator="ops@tahsil", reason="bank letter checked")
    server = call("api-keys-create", live, body={"name": "checkout server", "mode": "live",
                                                 "scopes": ["payments:create", "payments:read", "payments:write"],
                                                 "ip_allowlist": ["185.62.75.24/32"]})
    assert server.status == 201
    endpoint = create_endpoint(live, receiver.url)
    assert endpoint.status == 201, endpoint.body
    for _ in range(2):
        assert call("webhook-endpoints-test", live, path_id=endpoint.data["id"]).status == 202
        run_pipeline()
    assert create_endpoint(test, receiver.url, ["payment.captured"]).status == 201
    assert sale(test).status == 200
    run_pipeline()


# ------------------------------------------------------------------ the gate


def test_a_new_merchants_live_keys_cannot_create_payments(fresh: dict[str, Any]) -> None:
    test, live = keys(fresh)
    for answer in (sale(live), call("payments-authorize", live, body={**SALE, "card": {**CARD, "number": fresh_card()}}),
                   call("payment-intents-create", live, body={"amount": 100, "currency": "USD", "success_url": "https://shop.example/ok"})):
        assert answer.status == 403 and answer.error["code"] == "LIVE_MODE_NOT_ENABLED", answer.body
        assert "go-live" in answer.error["message"]
    assert sale(test).status == 200  # test mode is never gated
    assert call("api-keys-list", live).status == 200  # live keys may do everything else


def test_approval_opens_live_payments_for_existing_and_new_keys(fresh: dict[str, Any], fake_adyen: Any) -> None:
    from tahsil.console import golive
    from tests.support.connectors import connect

    connect(fresh["merchant_id"], fake_adyen)  # live payments go to a processor connector (the fake Adyen)
    test, live = keys(fresh)
    refused = sale(live, idem="order-7")
    assert refused.status == 403
    assert call("go-live-reviews-create", live, body={"note": "please"}).status == 201
    approved = golive.approve(fresh["merchant_id"], operator="ops@tahsil", force=True, reason="evidence checked by phone")
    assert approved["status"] == "approved" and approved["keys_updated"] == 4
    # The refusal was not stored as the Idempotency-Key's answer: the retry runs.
    retry = sale(live, idem="order-7")
    assert retry.status == 200 and retry.data["livemode"] is True
    newer = call("api-keys-create", live, body={"name": "later", "scopes": ["payments:create"]}).data["secret"]
    assert sale(newer).status == 200
    status = call("go-live-get", test).data
    assert status["status"] == "approved" and status["live_enabled"] is True
    assert status["latest_review"]["decided_by"] == "ops@tahsil" and status["latest_review"]["reason"] == "evidence checked by phone"


# ------------------------------------------------------------------ the checklist


def test_a_new_merchant_fails_every_item_with_a_reason(fresh: dict[str, Any]) -> None:
    answer = call("go-live-get", keys(fresh)[0])
    assert answer.data["score"] == 0 and answer.data["status"] == "not_ready" and not answer.data["live_enabled"]
    assert [c["id"] for c in answer.data["checks"]] == ["business_profile", "api_keys", "webhook_delivery",
                                                        "payout_destination", "test_payment"]
    assert all(c["status"] == "failed" and c["detail"] for c in answer.data["checks"])
    assert [b["item"] for b in answer.data["blocking_issues"]] == [c["id"] for c in answer.data["checks"]]
    assert {c["mode"] for c in answer.data["checks"]} == {"live", "test"}


def test_the_profile_and_payout_items_cite_their_records(fresh: dict[str, Any]) -> None:
    from tahsil.console import profile

    test, live = keys(fresh)
    saved = call("account-update", live, body={**PROFILE, "payout_destination": {**IQD, "account_holder_name": "Someone Else"}})
    found = checks(test)
    assert found["business_profile"]["status"] == "passed"
    assert found["business_profile"]["evidence_id"] == saved.data["profile_id"]
    assert found["payout_destination"]["status"] == "failed" and "not verified" in found["payout_destination"]["detail"]
    profile.verify_payout(fresh["merchant_id"], operator="ops@tahsil", reason="bank letter checked")
    found = checks(test)
    assert found["payout_destination"]["status"] == "failed" and "legal name" in found["payout_destination"]["detail"]
    call("account-update", live, body={"payout_destination": {**IQD, "account_holder_name": "basra private school, llc"}})
    assert checks(test)["payout_destination"]["status"] == "failed"  # a new destination is unverified again
    profile.verify_payout(fresh["merchant_id"], operator="ops@tahsil", reason="bank letter checked")
    found = checks(test)
    assert found["payout_destination"]["status"] == "passed"
    assert found["payout_destination"]["evidence_id"].startswith("po_") and "IQD" in found["payout_destination"]["detail"]


def test_the_api_key_item_wants_an_allowlisted_live_key_that_cannot_manage_keys(fresh: dict[str, Any]) -> None:
    test, live = keys(fresh)
    body = {"name": "server", "mode": "live", "scopes": ["payments:create", "keys:write"], "ip_allowlist": ["203.0.113.7"]}
    call("api-keys-create", live, body=body)
    assert checks(test)["api_keys"]["status"] == "failed" and "keys:write" in checks(test)["api_keys"]["detail"]
    made = call("api-keys-create", live, body={**body, "scopes": ["payments:create", "payments:read"]}).data
    item = checks(test)["api_keys"]
    assert item["status"] == "passed" and item["evidence_id"] == made["id"] and "203.0.113.7/32" in item["detail"]


@pytest.mark.parametrize("allowlist", [["0.0.0.0/0"], ["::/0"], ["203.0.113.7", "::/0"], ["0.0.0.0/0", "2001:db8::/48"]])
def test_an_allowlist_that_admits_the_whole_internet_is_no_allowlist(fresh: dict[str, Any], allowlist: list[str]) -> None:
    test, live = keys(fresh)
    body = {"name": "server", "mode": "live", "scopes": ["payments:create"], "ip_allowlist": allowlist}
    assert call("api-keys-create", live, body=body).status == 201
    item = checks(test)["api_keys"]
    assert item["status"] == "failed" and item["evidence_id"] is None
    assert "whole internet" in item["detail"] and "/0" in item["detail"]
    made = call("api-keys-create", live, body={**body, "ip_allowlist": ["203.0.113.0/24"]}).data
    item = checks(test)["api_keys"]
    assert item["status"] == "passed" and item["evidence_id"] == made["id"]


def test_the_webhook_item_needs_two_2xx_in_a_row_from_a_live_endpoint(fresh: dict[str, Any], loopback: None,
                                                                      receiver: Receiver) -> None:
    test, live = keys(fresh)
    endpoint = create_endpoint(live, receiver.url).data
    receiver.plan = [200, 500]
    for _ in range(2):
        call("webhook-endpoints-test", live, path_id=endpoint["id"])
        run_pipeline()
    item = checks(test)["webhook_delivery"]
    assert item["status"] == "failed" and item["evidence_id"] == endpoint["id"] and "500" in item["detail"]
    for _ in range(2):
        call("webhook-endpoints-test", live, path_id=endpoint["id"])
        run_pipeline()
    item = checks(test)["webhook_delivery"]
    assert item["status"] == "passed" and item["evidence_id"] == endpoint["id"]


def test_the_test_payment_item_needs_a_captured_payment_whose_webhook_arrived(fresh: dict[str, Any], loopback: None,
                                                                              receiver: Receiver) -> None:
    test, _ = keys(fresh)
    paid = sale(test).data
    run_pipeline()
    item = checks(test)["test_payment"]
    assert item["status"] == "failed" and item["evidence_id"] == paid["id"]  # no endpoint received it
    create_endpoint(test, receiver.url, ["payment.captured"])
    paid = sale(test).data
    run_pipeline()
    item = checks(test)["test_payment"]
    assert item["status"] == "passed" and item["evidence_id"] == paid["id"] and item["mode"] == "test"


def test_a_ready_merchant_scores_100_and_is_approved_without_force(fresh: dict[str, Any], loopback: None,
                                                                   receiver: Receiver, fake_adyen: Any) -> None:
    from tahsil.console import golive

    test, live = keys(fresh)
    make_ready(fresh, receiver)
    status = call("go-live-get", test).data
    assert status["score"] == 100 and status["status"] == "ready_for_approval" and status["blocking_issues"] == [], status
    review = call("go-live-reviews-create", test, body={"note": "fees start Monday"})
    assert review.status == 201 and review.data["readiness"] == "ready_for_approval" and review.data["score"] == 100
    assert call("go-live-get", test).data["status"] == "in_review"
    decided = golive.approve(fresh["merchant_id"], operator="ops")
    assert decided["status"] == "approved" and decided["reason"] is None
    from tests.support.connectors import connect

    connect(fresh["merchant_id"], fake_adyen)  # live payments go to a processor connector (the fake Adyen)
    assert sale(live).status == 200


# ------------------------------------------------------------------ reviews


def test_one_review_at_a_time_and_an_operator_must_decide_it(fresh: dict[str, Any]) -> None:
    from tahsil.console import golive
    from tahsil.kernel.errors import Conflict, InvalidRequest, NotFound

    test, live = keys(fresh)
    with pytest.raises(NotFound):
        golive.approve(fresh["merchant_id"], operator="ops")
    first = call("go-live-reviews-create", test)
    assert first.status == 201 and first.data["status"] == "requested" and first.data["readiness"] == "not_ready"
    assert first.data["blocking_issues"] and first.data["requested_by"]
    again = call("go-live-reviews-create", test)
    assert again.status == 409 and again.error["status"] == "in_review"
    with pytest.raises(Conflict, match="checklist items fail"):
        golive.approve(fresh["merchant_id"], operator="ops")
    with pytest.raises(InvalidRequest):
        golive.approve(fresh["merchant_id"], operator="ops", force=True)
    with pytest.raises(InvalidRequest):
        golive.reject(fresh["merchant_id"], operator="ops", reason=" ")
    rejected = golive.reject(fresh["merchant_id"], operator="ops", reason="add a payout account")
    assert rejected["status"] == "rejected" and rejected["live_enabled"] is False
    assert sale(live).status == 403
    status = call("go-live-get", test).data
    assert status["latest_review"]["status"] == "rejected" and status["latest_review"]["reason"] == "add a payout account"
    assert call("go-live-reviews-create", test).status == 201  # after a rejection, ask again
    assert len(call("go-live-get", test).data["reviews"]) == 2


def test_an_approved_account_cannot_request_another_review(merchant: dict[str, Any]) -> None:
    answer = call("go-live-reviews-create", merchant["keys"]["test"]["secret"])
    assert answer.status == 409 and answer.error["status"] == "approved"
