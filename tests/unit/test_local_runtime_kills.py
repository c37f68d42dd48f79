"""Execution environments killed from outside (``kill -9``), as the chaos test (tests/integration/test_chaos.py)
kills them: mid-invocation the invocation fails and the next one gets a new environment; killed while idle,
the invocation it never took runs on another one. ``FunctionPool.environments`` lists what there is to kill."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from tests.support.runtime import alive as _alive


def _until(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_a_kill_mid_invocation_fails_it_and_the_next_invocation_gets_a_new_environment(probe_pool: Any) -> None:
    from tahsil_local.runtime import FunctionError

    pool = probe_pool()
    pid = pool.invoke({})["pid"]
    assert pool.environments() == [{"function": "ProbeFunction", "pid": pid, "state": "idle",
                                    "age_s": pool.environments()[0]["age_s"]}]
    failed: list[BaseException] = []

    def slow() -> None:
        try:
            pool.invoke({"sleep": 5})
        except FunctionError as exc:
            failed.append(exc)

    caller = threading.Thread(target=slow)
    caller.start()
    busy = _until(lambda: [e for e in pool.environments() if e["state"] == "busy"])
    assert busy[0]["pid"] == pid
    os.kill(pid, signal.SIGKILL)
    caller.join(timeout=10)
    assert len(failed) == 1 and isinstance(failed[0], FunctionError)
    assert failed[0].error_type == "Runtime.ExitError"  # API Gateway answers 502 for it
    again = pool.invoke({})
    assert again["pid"] != pid and again["calls"] == 1 and pool.cold_starts == 2


@pytest.mark.parametrize("pause", [0.0, 0.2])
def test_an_environment_killed_while_idle_does_not_fail_the_next_invocation(probe_pool: Any, pause: float) -> None:
    pool = probe_pool()
    pid = pool.invoke({})["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(pause)  # 0: the pool may not have seen it die yet, and hands it the invocation
    answer = pool.invoke({})
    assert answer["pid"] != pid and answer["calls"] == 1
    assert not _alive(pid) and [e["pid"] for e in pool.environments()] == [answer["pid"]]
