"""The local gateway driven over HTTP exactly as a merchant would, with the seed's curl examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.support.gateway import ROOT, Gateway
from tests.support.local_gateway import SEED_AUTHORIZE, count_payments, fire, fresh_key


def curl(gw: Gateway, method: str, path: str, data: dict[str, Any] | None = None, idem: str | None = None) -> dict:
    """The seed's curl examples, with only the host and the key changed."""
    cmd = ["curl", "-s", "-X", method, gw.url + path, "-H", f"X-API-Key: {gw.key()}",
           "-H", "Content-Type: application/json", "--max-time", "20"]
    if idem:
        cmd += ["-H", f"Idempotency-Key: {idem}"]
    if data is not None:
        cmd += ["-d", json.dumps(data)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30).stdout)


def test_seed_curl_examples_work_against_the_local_gateway(gateway: Gateway) -> None:
    auth = curl(gateway, "POST", "/v1/payments/authorize", SEED_AUTHORIZE, idem="order-12345-auth")
    assert auth["success"] is True and auth["data"]["status"] == "authorized"
    pid = auth["data"]["id"]
    assert curl(gateway, "GET", f"/v1/payments/{pid}")["data"]["status"] == "authorized"
    captured = curl(gateway, "POST", f"/v1/payments/{pid}/capture", {"amount": 9999})
    assert captured["data"]["status"] == "captured"
    refund = curl(gateway, "POST", f"/v1/payments/{pid}/refund", {"amount": 2500, "reason": "Product damaged - partial refund"})
    assert refund["data"]["status"] == "partially_refunded" and refund["data"]["remaining_amount"] == 7499

    sale_body = {"amount": 4999, "currency": "USD", "card": {"number": "5555555555554444", "cardholder_name": "Jane Smith",
                 "exp_month": 6, "exp_year": 2030, "cvv": "456"}, "description": "Subscription - Monthly Plan"}
    assert curl(gateway, "POST", "/v1/payments/sale", sale_body, idem="order-12345-sale")["data"]["status"] == "captured"
    held = curl(gateway, "POST", "/v1/payments/authorize", SEED_AUTHORIZE)["data"]["id"]
    voided = curl(gateway, "POST", f"/v1/payments/{held}/void", {"reason": "Customer requested order cancellation"})
    assert voided["data"]["status"] == "voided"
    listing = curl(gateway, "GET", "/v1/transactions?status=authorized&limit=20&offset=0")
    assert listing["data"]["total"] >= 2 and listing["data"]["limit"] == 20


def test_every_answer_has_a_request_id_and_unknown_paths_are_404(gateway: Gateway) -> None:
    answer = gateway.call("GET", "/v1/nowhere")
    assert answer.status_code == 404
    ok = gateway.call("GET", "/v1/payments")
    assert ok.status_code == 200 and ok.headers["X-Request-Id"]


def test_openapi_document_is_served_and_matches_docs(gateway: Gateway) -> None:
    served = requests.get(gateway.url + "/v1/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == json.loads((ROOT / "docs" / "openapi.json").read_text())


def test_ops_command_creates_a_merchant_whose_key_works(gateway: Gateway) -> None:
    env = {**os.environ, "TAHSIL_STATE_DIR": str(gateway.state_dir)}
    out = subprocess.run([sys.executable, "-m", "tahsil_local.cli", "merchants", "create", "--name", "Ops Store", "--local"],
                         env=env, capture_output=True, text=True, timeout=60, check=True)
    created = json.loads(out.stdout)
    key = created["keys"]["test"]["secret"]
    answer = gateway.call("POST", "/v1/payments/authorize", key=key, json_body=SEED_AUTHORIZE)
    assert answer.status_code == 200
    assert gateway.call("GET", f"/v1/payments/{answer.json()['data']['id']}").status_code == 404  # other merchant


def test_dev_json_holds_base_url_merchant_and_keys(gateway: Gateway) -> None:
    state = json.loads((Path(gateway.state_dir) / f"dev-{gateway.port}.json").read_text())
    assert state["base_url"] == gateway.url
    assert state["merchant_id"].startswith("mer_")
    assert state["keys"]["test"]["secret"].startswith("sk_test_")
    assert state["keys"]["live"]["publishable"].startswith("pk_live_")


# ------------------------------------------------------------------ concurrency








def test_50_concurrent_identical_authorizes_with_one_key_make_exactly_one_payment(gateway: Gateway) -> None:
    # Replays count against the 20/s payments limit (as Stripe counts them): this merchant's limit is
    # raised so that all 50 requests meet the idempotency lock, which is what this test is about.
    key = fresh_key(gateway, limits=["payments.per_second=100"])
    answers = fire(50, lambda i: gateway.call("POST", "/v1/payments/authorize", key=key, json_body=SEED_AUTHORIZE,
                                              idem="double-click-1"))
    statuses = [a.status_code for a in answers]
    assert all(s < 500 for s in statuses), statuses
    assert set(statuses) <= {200, 409}
    ids = {a.json()["data"]["id"] for a in answers if a.status_code == 200}
    assert len(ids) == 1
    assert count_payments(gateway, key) == 1


def test_20_concurrent_partial_refunds_never_exceed_the_capture(gateway: Gateway) -> None:
    key = fresh_key(gateway)
    pid = gateway.call("POST", "/v1/payments/sale", key=key, json_body={**SEED_AUTHORIZE, "amount": 10000}).json()["data"]["id"]
    answers = fire(20, lambda i: gateway.call("POST", f"/v1/payments/{pid}/refund", key=key,
                                              json_body={"amount": 700, "reason": f"part {i}"}))
    statuses = [a.status_code for a in answers]
    assert all(s < 500 for s in statuses), statuses
    won = sum(1 for s in statuses if s == 200)
    final = gateway.call("GET", f"/v1/payments/{pid}", key=key).json()["data"]
    assert final["refunded_amount"] == 700 * won <= final["captured_amount"] == 10000
    assert won == 14  # 14 x 700 = 9,800; a 15th would exceed 10,000
    listing = gateway.call("GET", "/v1/transactions?limit=100", key=key).json()["data"]
    assert sum(1 for t in listing["transactions"] if t["type"] == "refund") == won


def test_10_concurrent_captures_have_exactly_one_winner(gateway: Gateway) -> None:
    key = fresh_key(gateway)
    pid = gateway.call("POST", "/v1/payments/authorize", key=key, json_body=SEED_AUTHORIZE).json()["data"]["id"]
    answers = fire(10, lambda i: gateway.call("POST", f"/v1/payments/{pid}/capture", key=key, json_body={}))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 9, statuses
    final = gateway.call("GET", f"/v1/payments/{pid}", key=key).json()["data"]
    assert final["status"] == "captured" and final["captured_amount"] == 9999


def test_ctrl_c_stops_the_gateway_cleanly(tmp_path: Path) -> None:
    gw = Gateway(tmp_path)
    assert gw.call("GET", "/v1/payments").status_code == 200
    assert gw.stop() == 0
    assert "stopping" in (tmp_path / "gateway.log").read_text()


# ------------------------------------------------------------------ the first hour


def test_a_second_gateway_on_a_busy_port_says_how_to_pick_another(gateway: Gateway) -> None:
    env = {**os.environ, "TAHSIL_STATE_DIR": str(gateway.state_dir), "TAHSIL_PORT": str(gateway.port)}
    done = subprocess.run([sys.executable, "-m", "tahsil_local.cli", "dev"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert f"port {gateway.port} on 127.0.0.1 is already in use" in done.stderr
    assert f"TAHSIL_PORT={gateway.port + 1} make run" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    state = json.loads((Path(gateway.state_dir) / f"dev-{gateway.port}.json").read_text())
    assert state["keys"] == gateway.state["keys"]  # the running gateway's file is untouched


def test_the_log_has_one_line_per_request_naming_its_function(gateway: Gateway) -> None:
    import socket
    import time

    marker = f"/v1/payments/pay_{os.urandom(6).hex()}"
    missing = gateway.call("GET", marker)
    assert missing.status_code in (400, 404)
    assert gateway.call("GET", "/api/v1/payments?limit=1").status_code == 200
    for _ in range(5):  # browsers that close the tab mid-answer
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
            s.sendall(b"GET /dashboard HTTP/1.1\r\nHost: x\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    time.sleep(1)
    log = (Path(gateway.state_dir) / "gateway.log").read_text()
    lines = [line for line in log.splitlines() if marker in line]
    assert len(lines) == 1 and lines[0].endswith("GetPaymentFunction") and f"GET {marker} " in lines[0]
    # time, method, path, status, ms, request id (the answer's X-Request-Id), function
    assert lines[0].split(" ")[3:6] == [str(missing.status_code), lines[0].split(" ")[4], missing.headers["X-Request-Id"]]
    assert lines[0].split(" ")[4].endswith("ms")
    # workers' lines have the same shape: the request log's consumer took this request's record from its queue
    workers = [line.split(" ") for line in log.splitlines() if line.split(" ")[1:2] == ["SQS"]]
    assert workers and all(len(w) == 7 and w[3] in ("ok", "partial") and w[4].endswith("ms") for w in workers), workers
    assert any(line.endswith("ListPaymentsFunction") and "GET /api/v1/payments 200 " in line for line in log.splitlines())
    assert "Traceback" not in log and "BrokenPipeError" not in log
    assert "No application metrics" not in log


def test_the_demo_order_page_is_a_place_to_land_after_paying(gateway: Gateway) -> None:
    made = gateway.call("POST", "/v1/payment-intents", json_body={
        "amount": 9999, "currency": "USD", "description": "Order #12345 - Premium Plan",
        "success_url": f"{gateway.url}/demo/order/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{gateway.url}/demo/order/cancel"})
    assert made.status_code == 201, made.text
    page = requests.get(f"{gateway.url}/demo/order/success?session_id={made.json()['data']['id']}", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'data-page="success"' in page.text and "/public/payment-intents/" in page.text
    cancel = requests.get(f"{gateway.url}/demo/order/cancel", timeout=10)
    assert cancel.status_code == 200 and 'data-page="cancel"' in cancel.text


def test_make_runs_from_another_directory(tmp_path: Path) -> None:
    import shutil

    if shutil.which("make") is None:
        import pytest

        pytest.skip("make is not installed")
    done = subprocess.run(["make", "-f", str(ROOT / "Makefile"), "-n", "run"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert f'cd "{ROOT}" &&' in done.stdout and "tahsil dev" in done.stdout
