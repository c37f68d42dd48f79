"""The local front door: API Gateway REST proxy events for the template's Api routes.

Each function gets a pool of execution environments, as Lambda does (``tahsil_local.runtime``):
an environment is its own process, serves one request at a time, and a request that finds none
idle gets a new one (a cold start). So module state behaves as it does in Lambda, and
concurrency tests run real parallel handlers.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tahsil_local.runtime import FunctionPool
from tahsil_local.template import Function, Route

MAX_BODY = 6 * 1024 * 1024  # Lambda's synchronous payload limit


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class Router:
    def __init__(self, functions: list[Function], pools: dict[str, FunctionPool] | None = None) -> None:
        self.table: list[tuple[Route, FunctionPool]] = []
        pools = pools if pools is not None else {fn.logical_id: FunctionPool(fn) for fn in functions}
        for fn in functions:
            pool = pools[fn.logical_id]
            for route in fn.routes:
                self.table.append((route, pool))
        # Literal segments beat parameters, as API Gateway matches them.
        self.table.sort(key=lambda pair: pair[0].path.count("{"))

    def match(self, method: str, path: str) -> tuple[Route, FunctionPool, dict[str, str]] | None:
        for route, pool in self.table:
            if route.method not in (method, "ANY"):
                continue
            found = route.regex.match(path)
            if found:
                return route, pool, found.groupdict()
        return None

    def allowed(self, path: str) -> bool:
        return any(route.regex.match(path) for route, _ in self.table)


def build_event(route: Route, method: str, path: str, query: str, headers: dict[str, str], body: bytes | None,
                params: dict[str, str], source_ip: str, stage: str = "local") -> dict[str, Any]:
    pairs = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for k, v in pairs:
        multi_query.setdefault(k, []).append(v)
    text: str | None = None
    is_b64 = False
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
    request_id = str(uuid.uuid4())
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent") or headers.get("user-agent")},
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


class _Handler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"success": False, "error": {"code": code, "message": message, "param": None,
                                                        "request_id": None}}).encode()
        self._send(status, {"Content-Type": "application/json"}, body)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._error(413, "PAYLOAD_TOO_LARGE", "request body is larger than 6 MB")
            return
        body = self.rfile.read(length) if length else None
        found = self.server.router.match(self.command, url.path)
        if found is None:
            if self.server.router.allowed(url.path):
                self._error(405, "METHOD_NOT_ALLOWED", f"{self.command} is not allowed on {url.path}")
            else:
                self._error(404, "NOT_FOUND", "no such endpoint")
            return
        route, pool, params = found
        headers = {k: v for k, v in self.headers.items()}
        event = build_event(route, self.command, url.path, url.query, headers, body, params, self.client_address[0])
        try:
            result = pool.invoke(event)
        except Exception as exc:  # noqa: BLE001 - a crashed Lambda is a 502 at API Gateway
            sys.stderr.write(f"function {pool.fn.logical_id} crashed: {exc!r}\n")
            self._error(502, "BAD_GATEWAY", "the function failed; see the gateway's log")
            return
        out_headers: dict[str, str] = {}
        for k, v in (result.get("headers") or {}).items():
            out_headers[k] = str(v)
        for k, vs in (result.get("multiValueHeaders") or {}).items():
            out_headers[k] = ", ".join(str(v) for v in vs)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        self._send(int(result.get("statusCode", 200)), out_headers, data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], router: Router, verbose: bool = False) -> None:
        super().__init__(address, _Handler)
        self.router = router
        self.verbose = verbose
