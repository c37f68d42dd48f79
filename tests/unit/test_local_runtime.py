"""The local runtime's own machinery: moto transaction fix, stream filter patterns, template reading."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from tests.support.runtime import _PROBE
from tests.support.runtime import alive as _alive


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
    assert not passes(prefix, {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "EVTS#m#test"}}}})


@pytest.mark.parametrize("function", ["WebhookFanoutFunction", "ExpiryTimersFunction"])
def test_the_outbox_triggers_pass_event_rows_of_both_layouts_and_nothing_else(function: str) -> None:
    from tahsil_local.pollers import passes
    from tahsil_local.template import load

    filters = load()["Resources"][function]["Properties"]["Events"]["Outbox"]["Properties"]["FilterCriteria"]["Filters"]

    def record(pk: str, sk: str, name: str = "INSERT") -> dict[str, Any]:
        return {"eventName": name, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
                                                 "NewImage": {"pk": {"S": pk}, "sk": {"S": sk},
                                                              "type": {"S": "payment.authorized"}}}}

    assert passes(filters, record("EVTS#mer_1#test", "evt_0ABCDEFGHabcdefghijk"))  # in its merchant's partition
    assert passes(filters, record("EVT#evt_1", "EVT"))  # a row of the older layout (a stream replayed by redrive)
    assert not passes(filters, record("EVTS#mer_1#test", "evt_0ABCDEFGHabcdefghijk", "MODIFY"))
    assert not passes(filters, record("EVT#evt_1", "DLV#whe_1"))  # a delivery row
    assert not passes(filters, record("PAY#pay_1", "PAY"))


# ------------------------------------------------------------------ the gateway's first hour


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
    for unknown in ("/apiv1/payments", "/api/api/v1/payments"):  # no such resource: the fallback answers 404
        assert router.match("GET", unknown)[1].fn.logical_id == "RouteFallbackFunction", unknown


# ------------------------------------------------------------------ execution environments (processes)

def test_each_environment_is_a_process_with_its_own_module_state_and_idle_ones_are_reused(probe_pool: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = probe_pool()
    first = pool.invoke({})
    assert first["name"] == "ProbeFunction" and first["color"] == "blue" and first["other"] is None


    assert first["pid"] != os.getpid() and first["calls"] == 1 and 0 < first["remaining_ms"] <= 5000
    again = pool.invoke({})
    assert again["pid"] == first["pid"] and again["calls"] == 2  # warm: the same process, its state kept
    assert again["request_id"] != first["request_id"]
    # Three at once: one environment each; the idle one serves one of them, two are cold starts.
    with ThreadPoolExecutor(3) as ex:
        answers = list(ex.map(lambda _: pool.invoke({"sleep": 0.5}), range(3)))
    assert len({a["pid"] for a in answers}) == 3
    assert sorted(a["calls"] for a in answers) == [1, 1, 3]
    assert pool.cold_starts == 3 and len(pool.processes) == 3


def test_an_unhandled_exception_is_a_function_error_and_the_environment_stays(probe_pool: Any) -> None:
    from tahsil_local.runtime import FunctionError

    pool = probe_pool()
    pid = pool.invoke({})["pid"]
    with pytest.raises(FunctionError) as failed:
        pool.invoke({"raise": True})
    assert failed.value.error_type == "ValueError"
    assert failed.value.payload["errorMessage"] == "card declined by the probe"
    assert pool.invoke({})["pid"] == pid and pool.cold_starts == 1


def test_a_failed_init_crash_and_timeout_fail_the_invocation_and_discard_the_environment(probe_pool: Any) -> None:
    from tahsil_local.runtime import FunctionError

    broken = probe_pool(PROBE_INIT_FAILS="1")
    with pytest.raises(FunctionError) as failed:
        broken.invoke({})
    assert failed.value.error_type == "Runtime.ImportModuleError"
    assert "no such dependency" in failed.value.payload["errorMessage"]

    pool = probe_pool(timeout=1)
    pid = pool.invoke({})["pid"]
    with pytest.raises(FunctionError) as crashed:
        pool.invoke({"exit": True})
    assert crashed.value.error_type == "Runtime.ExitError"
    pid2 = pool.invoke({})["pid"]
    assert pid2 != pid  # the crashed environment is gone: a cold start
    with pytest.raises(FunctionError) as timed_out:
        pool.invoke({"sleep": 3})
    assert timed_out.value.error_type == "Sandbox.Timedout"
    deadline = time.monotonic() + 5
    while _alive(pid2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid2)  # Lambda stops an environment that overran its timeout
    assert pool.invoke({})["calls"] == 1 and pool.cold_starts == 3


def test_stopping_a_pool_ends_every_environment(probe_pool: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tahsil_local.runtime import FunctionError

    pool = probe_pool()
    with ThreadPoolExecutor(2) as ex:
        pids = {a["pid"] for a in ex.map(lambda _: pool.invoke({"sleep": 0.3}), range(2))}
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    pool.stop()
    assert not any(_alive(p) for p in pids)
    with pytest.raises(FunctionError):
        pool.invoke({})


def test_idle_environments_are_reclaimed_and_the_next_request_is_a_cold_start(probe_pool: Any) -> None:
    pool = probe_pool()
    pid = pool.invoke({})["pid"]
    assert pool.reap(300) == 0 and _alive(pid)  # just used: kept
    assert pool.reap(300, now=time.monotonic() + 301) == 1
    assert not _alive(pid) and pool.processes == []
    again = pool.invoke({})
    assert again["pid"] != pid and again["calls"] == 1 and pool.cold_starts == 2


def test_environments_end_when_the_runtime_dies_without_stopping_them(tmp_path: Any) -> None:
    import subprocess
    import sys

    (tmp_path / "app.py").write_text(_PROBE)
    script = f"""
import os
from pathlib import Path
from tahsil_local.runtime import FunctionPool
from tahsil_local.template import Function
fn = Function(logical_id="ProbeFunction", code_dir=Path({str(tmp_path)!r}), handler="app.handler", timeout=5,
              memory=128, environment={{}})
print(FunctionPool(fn, {{"PATH": "/usr/bin:/bin"}}).invoke({{}})["pid"], flush=True)
os._exit(0)  # as a SIGKILL would: no chance to stop the pool
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.split()[0])  # (the environment may add a line as it notices its runtime is gone)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_a_function_runs_at_most_its_limit_of_environments_and_requests_wait_for_one(probe_pool: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = probe_pool()
    pool.max_environments = 2
    with ThreadPoolExecutor(5) as ex:
        answers = list(ex.map(lambda _: pool.invoke({"sleep": 0.3}), range(5)))
    assert len({a["pid"] for a in answers}) == 2  # five requests, two environments: three waited for one
    assert pool.cold_starts == 2 and len(pool.processes) == 2
    assert sorted(a["calls"] for a in answers)[-1] >= 2


def test_at_the_overall_limit_another_functions_idle_environment_makes_room(probe_pool: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil_local import runtime

    first, second = probe_pool(), probe_pool(COLOR="green")
    monkeypatch.setattr(runtime, "MAX_ENVIRONMENTS", runtime._Capacity.in_use() + 1)
    pid = first.invoke({})["pid"]
    assert second.invoke({})["color"] == "green"  # the limit is reached: first's idle environment was stopped
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid) and first.processes == [] and len(second.processes) == 1
    assert first.invoke({})["calls"] == 1  # and back: a cold start, making room in turn


def test_the_log_has_one_shape_for_requests_and_workers_in_text_and_json() -> None:
    import io

    from tahsil_local import accesslog

    out = io.StringIO()
    try:
        accesslog.configure("text")
        accesslog.line("POST", "/v1/payments/authorize", 200, 48.7, "req-1", "AuthorizePaymentFunction", stream=out)
        accesslog.line("SQS", "tahsil-local-RequestLogQueue", "partial", 9.2, "lam-1", "RequestLogFunction",
                       kind="worker", records=3, stream=out)
        http, worker = [line.split(" ") for line in out.getvalue().splitlines()]
        assert http[1:] == ["POST", "/v1/payments/authorize", "200", "48ms", "req-1", "AuthorizePaymentFunction"]
        assert worker[1:] == ["SQS", "tahsil-local-RequestLogQueue", "partial", "9ms", "lam-1", "RequestLogFunction"]
        out = io.StringIO()
        accesslog.configure("json")
        accesslog.line("GET", "/v1/payments", 404, 3.04, None, "gateway", stream=out)
        accesslog.line("STREAM", "tahsil-local-PaymentsTable", "ok", 12.0, "lam-2", "WebhookFanoutFunction",
                       kind="worker", records=2, stream=out)
        first, second = (json.loads(line) for line in out.getvalue().splitlines())
        assert {k: first[k] for k in ("kind", "method", "path", "status", "ms", "request_id", "function")} == {
            "kind": "http", "method": "GET", "path": "/v1/payments", "status": 404, "ms": 3.0, "request_id": None,
            "function": "gateway"}
        assert first["time"].endswith("Z") and "records" not in first
        assert second["kind"] == "worker" and second["records"] == 2 and second["status"] == "ok"
        with pytest.raises(ValueError):
            accesslog.configure("xml")
    finally:
        accesslog.configure("text")
