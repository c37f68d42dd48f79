"""The local runtime's log for people: one line per request, and one per worker invocation, in one shape.

    15:20:01 POST /v1/payments/authorize 200 48ms 6f1c0b7e-... AuthorizePaymentFunction
    15:20:01 SQS tahsil-local-RequestLogQueue ok 9ms 0d9a41e2-... RequestLogWriterFunction

time, method, path, status, milliseconds, request id, function. For an HTTP request the request id
is the answer's ``X-Request-Id`` (the ``request_id`` of an error body, API Gateway's request id);
the method and path are the request's and the status its HTTP status. For a worker (an event
source poller or a Step Functions task) the method is the source (``SQS``, ``STREAM``, ``SFN``),
the path the queue, table or state machine task, the status ``ok``, ``partial`` (some records
reported as failed) or ``error``, and the request id Lambda's own (``context.aws_request_id``,
which the function's log lines carry). With ``tahsil dev --log-format json``
(``TAHSIL_LOG_FORMAT=json``) each line is a JSON object with those fields (``time`` in UTC, ISO 8601),
plus ``kind`` (``http`` or ``worker``) and, for a worker, ``records``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from typing import Any, TextIO

_lock = threading.Lock()
_json = os.environ.get("TAHSIL_LOG_FORMAT", "text").lower() == "json"


def configure(fmt: str) -> None:
    """``text`` (the default) or ``json``."""
    global _json
    if fmt not in ("text", "json"):
        raise ValueError(f"log format {fmt!r}: expected text or json")
    _json = fmt == "json"


def json_lines() -> bool:
    return _json


def line(method: str, path: str, status: int | str, ms: float, request_id: str | None, function: str, *,
         kind: str = "http", records: int | None = None, stream: TextIO | None = None) -> None:
    now = dt.datetime.now(dt.UTC)
    if _json:
        doc: dict[str, Any] = {"time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "kind": kind,
                               "method": method, "path": path, "status": status, "ms": round(ms, 1),
                               "request_id": request_id, "function": function}
        if records is not None:
            doc["records"] = records
        text = json.dumps(doc, separators=(",", ":"))
    else:
        stamp = now.astimezone().strftime("%H:%M:%S")
        text = f"{stamp} {method} {path} {status} {int(ms)}ms {request_id or '-'} {function}"
    out = stream or sys.stdout
    with _lock:
        out.write(text + "\n")
        out.flush()
