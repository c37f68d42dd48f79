"""The local runtime's probe function: a tiny handler whose environments report their pid and state."""

from __future__ import annotations

import os

_PROBE = '''
import os
import time

CALLS = 0  # module state: one counter per execution environment
if os.environ.get("PROBE_INIT_FAILS"):
    raise ImportError("no such dependency")


def handler(event, context):
    global CALLS
    CALLS += 1
    if event.get("raise"):
        raise ValueError("card declined by the probe")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(3)
    return {"pid": os.getpid(), "calls": CALLS, "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(), "color": os.environ.get("COLOR"),
            "other": os.environ.get("OTHER_FUNCTION_ONLY"), "name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME")}
'''


def alive(pid: int) -> bool:
    """Whether a process is still running (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone too
        stat = fh.read()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
