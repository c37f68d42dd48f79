"""Request signing: the documented scheme, keys that require it, clock drift, replays, and what is recorded."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from typing import Any

import pytest

from tests.support.calls import PAYMENT, call, create_key, flush_logs
from tests.support.lambdas import ROOT, invoke, load_event

sys.path.insert(0, str(ROOT / "clients" / "python"))
import tahsil_client  # noqa: E402

SECRET = "tss_q8Zt4vXbN2mR7kLpW3yHc6Jd9FsA1eGu5TiOxKwYzQ0"
BODY = b'{"amount":9999,"currency":"USD","card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvv":"123"}}'
# docs/request-signing.md, "Worked example"
DOC_POST = "v1=b006f84ca07edcbc5995f6f61dc164af613004822260cd089f1c2558b2b4cf17"
DOC_GET = "v1=0b52194825e0256a6b407d0db9ac5b89e04a4da9d1d298d4c1bbdd59fafdc68c"


def test_the_worked_example_of_the_docs_holds_for_server_and_client() -> None:
    from tahsil.identity import signing

    assert hashlib.sha256(BODY).hexdigest() == "d497688c0b87d5ac44fdfaf1b92f1c585e60373ff6616ebfef6177779434c8ec"
    server = signing.sign(SECRET, signing.canonical_request("POST", "/v1/payments/authorize", [], "1767225600", BODY))
    client = tahsil_client.signature(SECRET, "POST", "/v1/payments/authorize", 1767225600, BODY)
    assert server == client == DOC_POST
    server_get = signing.sign(SECRET, signing.canonical_request(
        "GET", "/v1/request-logs", [("status", "4xx"), ("limit", "20")], "1767225600", b""))
    assert server_get == tahsil_client.signature(SECRET, "GET", "/v1/request-logs?status=4xx&limit=20", 1767225600, b"") == DOC_GET
    doc = (ROOT / "docs" / "request-signing.md").read_text()
    assert DOC_POST in doc and DOC_GET in doc
    # A stage prefix in the URL is not part of the signed path.
    assert tahsil_client.signature(SECRET, "GET", "/dev/v1/request-logs?limit=20&status=4xx", 1767225600, b"") == DOC_GET


@pytest.fixture
def signer(merchant: dict[str, Any]) -> dict[str, Any]:
    made = create_key(merchant["keys"]["test"]["secret"], require_signing=True,
                      scopes=["payments:create", "payments:read", "logs:read"])
    assert made.status == 201
    assert made.data["require_signing"] is True and made.data["signing_secret"].startswith("tss_")
    return made.data


def signed_authorize(key: dict[str, Any], *, body: bytes = BODY, sign_body: bytes | None = None,
                     timestamp: int | None = None, event: dict[str, Any] | None = None) -> Any:
    if event is None:
        headers = tahsil_client.signed_headers(key["signing_secret"], "POST", "/v1/payments/authorize",
                                               sign_body if sign_body is not None else body, timestamp=timestamp)
        event = load_event("payments-authorize", key=key["secret"], body=body.decode(), headers=headers)
        event["headers"].pop("Idempotency-Key", None)
        event["multiValueHeaders"].pop("Idempotency-Key", None)
    return invoke("AuthorizePaymentFunction", event), event


def test_a_signing_key_refuses_unsigned_requests(signer: dict[str, Any]) -> None:
    answer = call("payments-authorize", signer["secret"], body=PAYMENT)
    assert answer.status == 401 and answer.error["code"] == "SIGNATURE_REQUIRED"


def test_a_correctly_signed_request_passes(signer: dict[str, Any]) -> None:
    answer, _ = signed_authorize(signer)
    assert answer.status == 200 and answer.data["status"] == "authorized"


def test_a_tampered_body_is_a_signature_mismatch(signer: dict[str, Any]) -> None:
    tampered = BODY.replace(b"9999", b"9000")
    answer, _ = signed_authorize(signer, body=tampered, sign_body=BODY)
    assert answer.status == 401 and answer.error["code"] == "SIGNATURE_MISMATCH"


def test_a_timestamp_outside_300_seconds_is_refused_and_says_so(signer: dict[str, Any]) -> None:
    answer, _ = signed_authorize(signer, timestamp=int(time.time()) - 400)
    assert answer.status == 401 and answer.error["code"] == "SIGNATURE_TIMESTAMP_INVALID"
    assert "behind" in answer.error["message"] and 398 <= answer.error["drift_s"] <= 410
    ahead, _ = signed_authorize(signer, timestamp=int(time.time()) + 400)
    assert ahead.status == 401 and "ahead" in ahead.error["message"]
    within, _ = signed_authorize(signer, timestamp=int(time.time()) - 250)
    assert within.status == 200


def test_a_replayed_signed_request_outside_the_drift_window_fails(signer: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    first, event = signed_authorize(signer)
    assert first.status == 200
    later = time.time() + 301
    monkeypatch.setattr("tahsil.api.auth._now", lambda: later)
    replay = json.loads(json.dumps(event))
    replay["requestContext"]["requestId"] = "replay-1"
    answer, _ = signed_authorize(signer, event=replay)
    assert answer.status == 401 and answer.error["code"] == "SIGNATURE_TIMESTAMP_INVALID"


def test_passed_and_denied_checks_and_the_drift_are_recorded(signer: dict[str, Any]) -> None:
    signed_authorize(signer, timestamp=int(time.time()) - 7)
    signed_authorize(signer, body=BODY.replace(b"9999", b"1"), sign_body=BODY)
    signed_authorize(signer, timestamp=int(time.time()) - 3600)
    records = [r for r in flush_logs() if r["key_id"] == signer["id"]]
    outcomes = [(r["signature"]["outcome"], r["signature"]["reason"]) for r in records]
    assert outcomes == [("passed", None), ("denied", "mismatch"), ("denied", "clock_drift")]
    assert 6 <= records[0]["signature"]["drift_s"] <= 9
    assert records[2]["signature"]["drift_s"] >= 3599
    # The console reads them back from the request logs.
    logs = call("request-logs-list", signer["secret"], query={"key_id": signer["id"]},
                headers=tahsil_client.signed_headers(signer["signing_secret"], "GET",
                                                     f"/v1/request-logs?key_id={signer['id']}", b""))
    assert logs.status == 200, logs.body
    shown = [(e["status"], e["signature"]["outcome"]) for e in logs.data["request_logs"]]
    assert shown == [(401, "denied"), (401, "denied"), (200, "passed")]


def test_a_key_that_does_not_sign_records_not_required(merchant: dict[str, Any]) -> None:
    call("payments-authorize", merchant["keys"]["test"]["secret"], body=PAYMENT)
    (record,) = flush_logs()
    assert record["signature"] == {"outcome": "not_required", "reason": None, "drift_s": None}


def test_the_signing_secret_is_stored_neither_plain_nor_encrypted(signer: dict[str, Any]) -> None:
    from tahsil.store import dal

    rows = [dal.load(i) for i in dal._ddb().scan(TableName=dal.credentials_table())["Items"]]
    dumped = json.dumps(rows)
    assert signer["signing_secret"] not in dumped and signer["secret"] not in dumped
    row = next(r for r in rows if r.get("key_id") == signer["id"])
    assert set(row["signing"]) == {"required", "nonce", "enabled_at"}
