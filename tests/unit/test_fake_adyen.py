"""The fake Adyen (tahsil_local.fake_adyen) keeps Adyen's documented semantics, so tests that pass against it mean
something: idempotent replay, 422 "704" while a key is in flight or reused for another request, modifications
acknowledged and settled by notification, notifications signed, retried until [accepted], and the switches that
delay, duplicate, reorder or drop them. Everything on 127.0.0.1, bounded in time."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tahsil_local.fake_adyen import FakeAdyen

HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
API_KEY = "fake_unit_api_key"
ACCOUNT = "FakeUnitECOM"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def fake() -> Iterator[FakeAdyen]:
    adyen = FakeAdyen(api_key=API_KEY, hmac_key=HMAC_KEY, merchant_account=ACCOUNT, hang_seconds=0.5,
                      retry_delays=(0.05, 0.1), give_up_after=5.0)
    adyen.start()
    yield adyen
    adyen.stop()


def post(fake: FakeAdyen, path: str, body: dict[str, Any], *, key: str | None = None, api_key: str = API_KEY,
         timeout: float = 5) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "X-API-Key": api_key}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(f"{fake.url}{path}", data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with OPENER.open(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def payment(reference: str = "pay_1", amount: int = 1000, holder: str = "Ada L", cvc: str | None = "737") -> dict[str, Any]:
    method = {"type": "scheme", "number": "4111111111111111", "expiryMonth": "12", "expiryYear": "2030",
              "holderName": holder}
    if cvc:
        method["cvc"] = cvc
    return {"merchantAccount": ACCOUNT, "reference": reference, "amount": {"value": amount, "currency": "EUR"},
            "paymentMethod": method, "additionalData": {"manualCapture": "true"}}


def authorise(fake: FakeAdyen, reference: str = "pay_1", amount: int = 1000) -> str:
    status, answer = post(fake, "/v71/payments", payment(reference, amount), key=reference)
    assert status == 200 and answer["resultCode"] == "Authorised", answer
    return str(answer["pspReference"])


def modify(fake: FakeAdyen, psp: str, kind: str, reference: str, amount: int | None = None) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"merchantAccount": ACCOUNT, "reference": reference}
    if amount is not None:
        body["amount"] = {"value": amount, "currency": "EUR"}
    return post(fake, f"/v71/payments/{psp}/{kind}", body, key=reference)


def codes(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(i["eventCode"], i["success"]) for i in items]


# ---------------------------------------------------------------- idempotency


def test_the_same_key_and_body_replays_the_first_answer_and_acts_once(fake: FakeAdyen) -> None:
    first = post(fake, "/v71/payments", payment(), key="pay_1")
    again = post(fake, "/v71/payments", payment(), key="pay_1")
    assert first[0] == 200 and again == first
    assert len(fake.payments) == 1 and fake.replayed == 1
    assert codes(fake.take_notifications()) == [("AUTHORISATION", "true")]  # one authorisation, one notification


def test_a_replay_without_the_cvc_is_the_same_request(fake: FakeAdyen) -> None:
    # A key store kept for days cannot keep CVCs to compare them (PCI DSS).
    first = post(fake, "/v71/payments", payment(), key="pay_1")
    assert post(fake, "/v71/payments", payment(cvc=None), key="pay_1") == first
    strict = FakeAdyen(api_key=API_KEY, hmac_key=HMAC_KEY, merchant_account=ACCOUNT, compare_cvc=True)
    strict.start()
    try:
        post(strict, "/v71/payments", payment(), key="pay_1")
        status, answer = post(strict, "/v71/payments", payment(cvc=None), key="pay_1")
        assert (status, answer["errorCode"]) == (422, "704")
    finally:
        strict.stop()


def test_the_same_key_with_another_body_is_a_422_704_and_nothing_happens(fake: FakeAdyen) -> None:
    psp = authorise(fake)
    status, answer = post(fake, "/v71/payments", payment(amount=2000), key="pay_1")
    assert (status, answer["errorCode"], answer["errorType"]) == (422, "704", "validation")
    assert "different request" in answer["message"]
    # The same key on another endpoint is another request too.
    status, answer = post(fake, f"/v71/payments/{psp}/captures",
                          {"merchantAccount": ACCOUNT, "reference": "x", "amount": {"value": 1, "currency": "EUR"}},
                          key="pay_1")
    assert (status, answer["errorCode"]) == (422, "704")
    assert len(fake.payments) == 1 and fake.payments[psp].captured == 0 and fake.rejected_704 == 2


def test_keys_are_scoped_to_the_api_credential(fake: FakeAdyen) -> None:
    other = fake.add_api_key()
    first = post(fake, "/v71/payments", payment(), key="shared-key")
    second = post(fake, "/v71/payments", payment(), key="shared-key", api_key=other)
    assert first[0] == second[0] == 200 and first[1]["pspReference"] != second[1]["pspReference"]
    assert len(fake.payments) == 2
    assert post(fake, "/v71/payments", payment(), key="k", api_key="not-a-key")[0] == 401


def test_the_same_key_while_the_first_request_is_in_flight_answers_422_704(fake: FakeAdyen) -> None:
    fake.inject("hang_during", op="payments")
    results: list[tuple[int, dict[str, Any]]] = []
    first = threading.Thread(target=lambda: results.append(post(fake, "/v71/payments", payment(), key="pay_1")))
    first.start()
    deadline = time.monotonic() + 5
    while not fake.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.in_flight, "the first request never started"
    status, answer = post(fake, "/v71/payments", payment(), key="pay_1")
    assert (status, answer["errorCode"]) == (422, "704") and "in progress" in answer["message"]
    first.join(timeout=5)
    assert results and results[0][0] == 200
    assert post(fake, "/v71/payments", payment(), key="pay_1") == results[0]  # then the first answer
    assert len(fake.payments) == 1


def test_faults_before_and_after_acting(fake: FakeAdyen) -> None:
    fake.inject("500_before", op="payments")
    assert post(fake, "/v71/payments", payment(), key="pay_1")[0] == 500 and not fake.payments
    fake.inject("500_after", op="payments")
    assert post(fake, "/v71/payments", payment(), key="pay_1")[0] == 500 and len(fake.payments) == 1
    status, answer = post(fake, "/v71/payments", payment(), key="pay_1")  # a retry learns the outcome
    assert status == 200 and answer["pspReference"] in fake.payments
    fake.inject("drop_after", op="payments")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        post(fake, "/v71/payments", payment("pay_2"), key="pay_2")
    assert len(fake.payments) == 2
    fake.inject("704", op="payments", times=2)
    assert [post(fake, "/v71/payments", payment("pay_3"), key="pay_3")[0] for _ in range(3)] == [422, 422, 200]
    fake.inject("hang_before", op="payments")
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        post(fake, "/v71/payments", payment("pay_4"), key="pay_4", timeout=0.2)
    assert len(fake.payments) == 3
    fake.fault = lambda op: "500_before" if op == "captures" else None  # the callback the fault suites set
    assert authorise(fake, "pay_5") and len(fake.payments) == 4


# ---------------------------------------------------------------- modifications


def test_modifications_are_received_and_settled_by_notification(fake: FakeAdyen) -> None:
    psp = authorise(fake, "pay_1", 1000)
    status, answer = modify(fake, psp, "captures", "txn_cap", 800)
    assert status == 201 and answer["status"] == "received" and answer["paymentPspReference"] == psp
    assert modify(fake, psp, "refunds", "txn_ref", 300)[1]["status"] == "received"
    other = authorise(fake, "pay_2", 500)
    assert modify(fake, other, "cancels", "txn_cancel")[1]["status"] == "received"
    third = authorise(fake, "pay_3", 700)
    modify(fake, third, "captures", "txn_cap3", 700)
    assert modify(fake, third, "reversals", "txn_rev")[1]["status"] == "received"
    assert codes(fake.take_notifications()) == [
        ("AUTHORISATION", "true"), ("CAPTURE", "true"), ("REFUND", "true"), ("AUTHORISATION", "true"),
        ("CANCELLATION", "true"), ("AUTHORISATION", "true"), ("CAPTURE", "true"), ("CANCEL_OR_REFUND", "true")]
    assert (fake.payments[psp].captured, fake.payments[psp].refunded) == (800, 300)
    assert fake.payments[other].cancelled and fake.payments[third].refunded == 700


def test_refused_modifications_notify_their_failure_and_change_nothing(fake: FakeAdyen) -> None:
    psp = authorise(fake)
    fake.take_notifications()
    fake.refuse_modifications("captures")
    assert modify(fake, psp, "captures", "txn_1", 1000)[1]["status"] == "received"
    assert codes(fake.take_notifications()) == [("CAPTURE_FAILED", "true")]
    assert fake.payments[psp].captured == 0
    fake.refuse_modifications("captures", how=None)
    modify(fake, psp, "captures", "txn_2", 1000)
    fake.refuse_modifications("refunds", how="after_success")
    modify(fake, psp, "refunds", "txn_3", 400)
    assert codes(fake.take_notifications()) == [("CAPTURE", "true"), ("REFUND", "true"), ("REFUND_FAILED", "true")]
    assert (fake.payments[psp].captured, fake.payments[psp].refunded) == (1000, 0)
    fake.inject("refuse", op="cancels")
    other = authorise(fake, "pay_2")
    modify(fake, other, "cancels", "txn_4")
    assert codes(fake.take_notifications())[-1] == ("CANCELLATION", "false") and not fake.payments[other].cancelled


def test_every_notification_verifies_with_tahsils_own_verifier(fake: FakeAdyen) -> None:
    from tahsil.connectors.adyen import InvalidNotification, parse_notifications

    psp = authorise(fake)
    modify(fake, psp, "captures", "txn_1", 600)
    modify(fake, psp, "refunds", "txn_2", 100)
    fake.refuse_modifications(how="failed")
    modify(fake, psp, "refunds", "txn_3", 100)
    modify(fake, psp, "captures", "txn_4", 100)
    fake.reset()
    post(fake, "/v71/payments", payment("pay_2", holder="Not enough balance"), key="pay_2")
    items = fake.take_notifications()
    parsed = parse_notifications(FakeAdyen.envelope(items), HMAC_KEY)
    assert [(n.event_code, n.success) for n in parsed] == [
        ("AUTHORISATION", True), ("CAPTURE", True), ("REFUND", True), ("REFUND_FAILED", True), ("CAPTURE", False),
        ("AUTHORISATION", False)]
    assert [n.outcome().status for n in parsed] == ["approved", "approved", "approved", "declined", "declined", "declined"]
    assert parsed[1].original_reference == psp and parsed[1].merchant_reference == "txn_1"
    with pytest.raises(InvalidNotification):
        parse_notifications(FakeAdyen.envelope(items), "00" * 32)


# ---------------------------------------------------------------- notification switches


def test_delayed_notifications_come_late(fake: FakeAdyen) -> None:
    fake.delay_notifications(0.3, events={"AUTHORISATION"})
    psp = authorise(fake)
    assert fake.take_notifications() == []
    modify(fake, psp, "captures", "txn_1", 1000)
    assert codes(fake.take_notifications()) == [("CAPTURE", "true")]  # not delayed: it overtakes the authorisation
    time.sleep(0.35)
    assert codes(fake.take_notifications()) == [("AUTHORISATION", "true")]


def test_duplicated_and_dropped_notifications(fake: FakeAdyen) -> None:
    fake.duplicate_notifications(1.0)
    authorise(fake, "pay_1")
    items = fake.take_notifications()
    assert codes(items) == [("AUTHORISATION", "true")] * 2 and items[0] == items[1] and items[0] is not items[1]
    fake.reset()
    fake.drop_notifications(1.0, events={"CAPTURE"})
    psp = authorise(fake, "pay_2")
    modify(fake, psp, "captures", "txn_1", 1000)
    assert codes(fake.take_notifications()) == [("AUTHORISATION", "true")]
    assert codes(fake.dropped) == [("CAPTURE", "true")] and fake.payments[psp].captured == 1000  # it did happen
    assert len(fake.history) == 3


def test_reordered_notifications_arrive_in_another_order(fake: FakeAdyen) -> None:
    fake.reorder_notifications(0.01)
    for n in range(12):
        authorise(fake, f"pay_{n}")
    time.sleep(0.02)
    taken = [i["merchantReference"] for i in fake.take_notifications()]
    assert sorted(taken) == sorted(f"pay_{n}" for n in range(12)) and taken != [f"pay_{n}" for n in range(12)]


# ---------------------------------------------------------------- delivery


class Receiver:
    """A notification endpoint on 127.0.0.1 that fails the first ``failures`` POSTs."""

    def __init__(self, failures: int = 0, answer: bytes = b"[accepted]") -> None:
        self.failures, self.answer = failures, answer
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                failing = len(receiver.bodies) <= receiver.failures
                data = b"boom" if failing else receiver.answer
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notifications"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_notifications_are_retried_until_accepted(fake: FakeAdyen) -> None:
    receiver = Receiver(failures=2)
    try:
        fake.push_to(receiver.url, every=0.02)
        authorise(fake)
        assert fake.wait_idle(timeout=5)
        assert len(receiver.bodies) == 3 and receiver.bodies[0] == receiver.bodies[2]
        assert codes(fake.delivered) == [("AUTHORISATION", "true")] and fake.delivery_attempts == 3
        item = receiver.bodies[2]["notificationItems"][0]["NotificationRequestItem"]
        assert item["additionalData"]["hmacSignature"] == fake.sign({k: v for k, v in item.items() if k != "additionalData"})
    finally:
        receiver.stop()


def test_delivery_gives_up_after_a_bounded_time() -> None:
    receiver = Receiver(answer=b"thanks")  # 200, but not [accepted]: Adyen retries
    adyen = FakeAdyen(api_key=API_KEY, hmac_key=HMAC_KEY, merchant_account=ACCOUNT, notify_url=receiver.url,
                      retry_delays=(0.05,), give_up_after=0.3)
    try:
        adyen.start()
        adyen._push_every = 0.02
        authorise(adyen)
        assert adyen.wait_idle(timeout=5)
        assert codes(adyen.undelivered) == [("AUTHORISATION", "true")] and not adyen.delivered
        assert 3 <= len(receiver.bodies) <= 12
    finally:
        adyen.stop()
        receiver.stop()


# ---------------------------------------------------------------- the HTTP control endpoint


def control(fake: FakeAdyen, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(f"{fake.control_url}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_control_endpoint_sets_the_same_switches(fake: FakeAdyen) -> None:
    status, state = control(fake, "/faults", {"fault": "500_before", "op": "payments", "times": 1})
    assert status == 200 and state["switches"]["faults"] == [{"op": "payments", "fault": "500_before", "times": 1}]
    assert post(fake, "/v71/payments", payment(), key="pay_1")[0] == 500
    psp = authorise(fake)
    control(fake, "/notifications", {"duplicate": 1, "delay": 0.2, "delay_events": ["capture"]})
    control(fake, "/refusals", {"ops": ["refunds"], "how": "failed"})
    modify(fake, psp, "captures", "txn_1", 1000)
    modify(fake, psp, "refunds", "txn_2", 100)
    assert codes(fake.take_notifications()) == [("AUTHORISATION", "true"), ("REFUND_FAILED", "true"),
                                                ("REFUND_FAILED", "true")]
    status, state = control(fake, "")
    assert state["payments"][psp]["captured"] == 1000 and state["switches"]["refusals"] == {"refunds": "failed"}
    assert state["requests"] == 4  # control calls are not Checkout API requests
    assert control(fake, "/reset", {})[1]["switches"]["notifications"]["duplicate"]["value"] == 0
    assert control(fake, "/faults", {"fault": "explode"})[0] == 400
    assert control(fake, "/nothing", {})[0] == 404


# ---------------------------------------------------------------- what the connector makes of it


def test_the_connector_treats_704_as_an_unknown_outcome_never_a_decline(
        fake: FakeAdyen, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.connectors.adyen import AdyenConnector
    from tahsil.connectors.base import CardData, Operation, OutcomeUnknown

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    connector = AdyenConnector(api_key=API_KEY, merchant_account=ACCOUNT, base_url=fake.url)
    op = Operation(kind="authorize", reference="pay_1", amount=1000, currency="EUR", payment_id="pay_1",
                   card=CardData("4111111111111111", 12, 2030, "737", "Ada L"))
    fake.inject("704", op="payments")
    with pytest.raises(OutcomeUnknown):
        connector.execute(op, timeout=5)
    assert connector.execute(op, timeout=5).status == "approved"
    other = op._replace(amount=2000)  # the same key for another request: 704 again, still unknown
    with pytest.raises(OutcomeUnknown):
        connector.execute(other, timeout=5)
    assert len(fake.payments) == 1
