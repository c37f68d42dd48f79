"""The local runtime's own machinery: moto transaction fix, stream filter patterns, template reading."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.fixture
def fixed_moto(aws_env: Any) -> Any:
    from tahsil_local import moto_fixes

    moto_fixes.install()
    return aws_env


def _stream_count(table: str) -> int:
    from moto.dynamodb.models import dynamodb_backends

    return len(dynamodb_backends["123456789012"]["us-east-1"].tables[table].stream_shard.items)


def test_a_cancelled_transaction_leaves_no_write_and_no_stream_record(fixed_moto: Any) -> None:
    from tahsil.store import dal

    table = dal.payments_table()
    dal.put(table, {"pk": "A", "sk": "1", "n": 1})
    dal.put(table, {"pk": "E", "sk": "1"})
    before = _stream_count(table)
    with pytest.raises(dal.ConditionFailed) as failed:
        dal.transact([
            dal.put_action(table, {"pk": "B", "sk": "1"}),
            dal.update_action(table, "A", "1", "SET n = :two", condition="n = :one", vals=dal.values(two=2, one=1)),
            dal.put_action(table, {"pk": "E", "sk": "1"}),  # exists: the condition fails
        ])
    assert failed.value.index == 2
    assert dal.get(table, "B", "1") is None
    assert dal.get(table, "A", "1")["n"] == 1
    assert _stream_count(table) == before


def test_a_successful_transaction_writes_everything_and_streams_it(fixed_moto: Any) -> None:
    from tahsil.store import dal

    table = dal.payments_table()
    dal.transact([dal.put_action(table, {"pk": "C", "sk": "1"}), dal.put_action(table, {"pk": "D", "sk": "1"})])
    assert dal.get(table, "C", "1") and dal.get(table, "D", "1")
    assert _stream_count(table) == 2


def test_stream_filter_patterns_match_like_lambda() -> None:
    from tahsil_local.pollers import passes

    pattern = [{"Pattern": json.dumps({"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": ["EVT"]}}}})}]
    insert_event = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "EVT#1"}, "sk": {"S": "EVT"}}}}
    assert passes(pattern, insert_event)
    assert not passes(pattern, {**insert_event, "eventName": "MODIFY"})
    assert not passes(pattern, {"eventName": "INSERT", "dynamodb": {"Keys": {"sk": {"S": "PAY"}}}})
    prefix = [{"Pattern": json.dumps({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "EVT#"}]}}}})}]
    assert passes(prefix, insert_event) and passes(None, {})


# ------------------------------------------------------------------ the gateway's first hour


def test_log_lines_are_credited_to_the_function_that_wrote_them() -> None:
    import io
    import logging
    import time

    from tahsil.kernel.telemetry import logger
    from tahsil_local.gateway import LambdaContext, _credited_to

    out = io.StringIO()
    capture = logging.StreamHandler(out)
    capture.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(capture)
    @logger.inject_lambda_context(clear_state=True)  # as every handler is decorated
    def fan_out(event: Any, context: Any) -> None:
        logger.append_keys(function_name="GetPaymentFunction")  # another thread's function, process-wide
        logger.warning("event fanned out")

    context = LambdaContext("WebhookFanoutFunction", 128, "req-1", time.monotonic() + 5)
    try:
        with _credited_to(context, {"Records": []}):
            fan_out({"Records": []}, context)
        logger.warning("after the invocation")
    finally:
        logger.remove_keys(["function_name"])
        logger._logger.removeHandler(capture)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    fanned = next(line for line in lines if line["message"] == "event fanned out")
    assert fanned["function_name"] == "WebhookFanoutFunction" and fanned["function_request_id"] == "req-1"
    after = next(line for line in lines if line["message"] == "after the invocation")
    assert after.get("function_name") != "WebhookFanoutFunction"  # the thread's keys went with the invocation


def test_a_client_that_hangs_up_costs_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    import io

    from tahsil_local.gateway import GatewayServer, Router, _Handler

    class Gone(io.BytesIO):
        def write(self, _: Any) -> int:  # type: ignore[override]
            raise BrokenPipeError(32, "Broken pipe")

    handler = object.__new__(_Handler)
    handler.wfile = Gone()
    handler.request_version, handler.command, handler.close_connection = "HTTP/1.1", "GET", False
    handler.requestline, handler.client_address = "GET / HTTP/1.1", ("127.0.0.1", 1)
    handler._headers_buffer = []
    handler._send(200, {"Content-Type": "text/plain"}, b"x" * 100)
    assert handler.close_connection is True
    server = GatewayServer(("127.0.0.1", 0), Router([]))
    try:
        try:
            raise BrokenPipeError(32, "Broken pipe")
        except BrokenPipeError:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err


def test_a_call_without_metrics_prints_no_warning() -> None:
    import subprocess
    import sys

    code = ("import tahsil.kernel.telemetry\n"
            "from aws_lambda_powertools import Metrics\n"
            "Metrics(namespace='T', service='t').flush_metrics()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "No application metrics" not in done.stderr
    control = subprocess.run([sys.executable, "-c", code.replace("import tahsil.kernel.telemetry\n", "")],
                             capture_output=True, text=True, timeout=60)
    assert "No application metrics" in control.stderr  # what the filter removes


def test_commands_find_the_gateway_on_tahsil_port(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil_local import cli

    monkeypatch.setenv("TAHSIL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TAHSIL_PORT", "3000")
    with pytest.raises(SystemExit, match="start one with `make run`"):
        cli._running_state_file()
    (tmp_path / "dev-3001.json").write_text("{}")
    assert cli._running_state_file() == tmp_path / "dev-3001.json"  # the only one running
    (tmp_path / "dev-3000.json").write_text("{}")
    assert cli._running_state_file() == tmp_path / "dev-3000.json"
    monkeypatch.setenv("TAHSIL_PORT", "3005")
    with pytest.raises(SystemExit, match="ports 3000, 3001"):
        cli._running_state_file()


def test_the_local_router_serves_the_templates_base_path_mapping_too() -> None:
    from tahsil_local import template
    from tahsil_local.gateway import Router

    doc = template.load()
    assert template.base_paths(doc) == ("api",)
    router = Router(template.functions(doc), base_paths=template.base_paths(doc))
    for path in ("/v1/payments/pay_1/capture", "/api/v1/payments/pay_1/capture"):
        route, pool, params = router.match("POST", path)
        assert (route.path, pool.fn.logical_id, params) == ("/v1/payments/{id}/capture", "CapturePaymentFunction",
                                                            {"id": "pay_1"})
    assert router.match("GET", "/api/public/payment-intents/pi_1")[1].fn.logical_id == "GetPublicPaymentIntentFunction"
    assert router.match("GET", "/apiv1/payments") is None and router.match("GET", "/api/api/v1/payments") is None
