"""The local front door: API Gateway REST proxy events for the template's Api routes.

Routing is API Gateway's: the most specific resource that matches the path wins (a literal
segment beats a ``{parameter}``, which beats a greedy ``{proxy+}``), then its method, else its
``ANY``. The template's ``RouteFallbackFunction`` has ``ANY`` (in the API's DefinitionBody) on every resource and on
``/{proxy+}``, so a method or path no route has gets the same 405/404 here as deployed. What the
front door answers itself (a body over Lambda's 6 MB, a crashed function, a path no resource
matches) is in the API's envelope with one request id in ``X-Request-Id`` and the body.

Each function gets a pool of execution environments, as Lambda does (``tahsil_local.runtime``):
an environment is its own process, serves one request at a time, and a request that finds none
idle gets a new one (a cold start). So module state behaves as it does in Lambda, each log line
belongs to the one function its process runs, and concurrency tests run real parallel handlers.

With ``TAHSIL_LOCAL_CONTROL=1`` (tests only; not an AWS route), ``GET /_local/environments`` lists every
execution environment of every function (``function``, ``pid``, ``state``: init, busy or idle, ``age_s``),
to loopback clients only: the chaos test (tests/integration/test_chaos.py) picks processes there to kill.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tahsil_local import accesslog
from tahsil_local.runtime import FunctionPool
from tahsil_local.template import Function, Route, specificity

MAX_BODY = 6 * 1024 * 1024  # Lambda's synchronous payload limit
# A client that went away mid-answer (a browser tab closed, a curl timeout): nothing to report.
GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
# The local runtime's own demo shop, to land on after paying on the checkout page (not in AWS).
DEMO_PAGES = {"/demo/order/success": "success", "/demo/order/cancel": "cancel"}
DEMO_PAGE = Path(__file__).with_name("demo_order.html")
DRAIN_LIMIT = 4 * MAX_BODY  # a larger body is not even read: the connection is closed after the 413
CONTROL_PATH = "/_local/environments"  # TAHSIL_LOCAL_CONTROL=1 only: the execution environments' processes


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
    """Routes requests as API Gateway does: by resource path, and, like a custom domain's base-path
    mappings (template.yaml's AWS::ApiGateway::BasePathMapping), under each base path too; the
    event's path then keeps the base path, as it does in AWS (``tahsil.api.http.canonical``)."""

    def __init__(self, functions: list[Function], pools: dict[str, FunctionPool] | None = None,
                 base_paths: tuple[str, ...] = ()) -> None:
        self.base_paths = tuple("/" + b.strip("/") for b in base_paths if b.strip("/"))
        self.table: list[tuple[Route, FunctionPool]] = []
        pools = pools if pools is not None else {fn.logical_id: FunctionPool(fn) for fn in functions}
        for fn in functions:
            pool = pools[fn.logical_id]
            for route in fn.routes:
                self.table.append((route, pool))
        # Literal segments beat parameters, as API Gateway matches them.
        self.table.sort(key=lambda pair: specificity(pair[0].path))

    def _candidates(self, path: str) -> list[str]:
        """A base path (seed 002's ``/api``) is stripped first, as a custom domain's mapping does in AWS."""
        return [path[len(b):] for b in self.base_paths if path.startswith(b + "/")] + [path]

    def _resolve(self, path: str) -> tuple[str, str] | None:
        for candidate in self._candidates(path):
            for route, _ in self.table:
                if route.regex.match(candidate):
                    return route.path, candidate
        return None

    def resource(self, path: str) -> str | None:
        """The resource API Gateway picks for ``path``: the most specific one that matches."""
        found = self._resolve(path)
        return found[0] if found else None

    def match(self, method: str, path: str) -> tuple[Route, FunctionPool, dict[str, str]] | None:
        found = self._resolve(path)
        if found is None:
            return None
        resource, candidate = found
        on_resource = [(route, pool) for route, pool in self.table if route.path == resource]
        for wanted in (method, "ANY"):
            for route, pool in on_resource:
                if route.method == wanted:
                    matched = route.regex.match(candidate)
                    assert matched is not None
                    return route, pool, matched.groupdict()
        return None

    def allowed(self, path: str) -> list[str]:
        """The methods of the resource ``path`` falls in (for a 405's Allow header)."""
        resource = self.resource(path)
        return sorted({route.method for route, _ in self.table if route.path == resource and route.method != "ANY"})


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
    request_id = str(uuid.uuid4())  # API Gateway's requestContext.requestId: the request's one id
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
        if self.server.verbose:  # http.server's own messages (bad request lines...), besides the access line
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access line is written by ``_access`` once the answer is sent, naming the function."""

    def _access(self, status: int, function: str, started: float) -> None:
        """One line per request: time, method, path, status, latency, request id, and the function that
        answered (``tahsil_local.accesslog``)."""
        accesslog.line(self.command, urlsplit(self.path).path, status, (time.perf_counter() - started) * 1000,
                       self._request_id, function)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except GONE:
            self.close_connection = True  # the client left; the answer had nowhere to go

    def _error(self, status: int, code: str, message: str, *, param: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        request_id = self._request_id = str(uuid.uuid4())
        body = json.dumps({"success": False, "error": {"code": code, "message": message, "param": param,
                                                        "request_id": request_id}}).encode()
        self._send(status, {"Content-Type": "application/json", "X-Request-Id": request_id, **(headers or {})}, body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a malformed request line, headers too long, an unknown verb),
        in the API's envelope instead of an HTML page."""
        self.close_connection = True
        status = 405 if code == 501 else code
        self._error(status, "METHOD_NOT_ALLOWED" if status == 405 else "INVALID_REQUEST",
                    message or explain or "the request could not be read")

    def _dispatch(self) -> None:
        started = time.perf_counter()
        self._request_id: str | None = None
        status, function = self._answer()
        self._access(status, function, started)

    def _demo(self, page: str) -> tuple[int, str]:
        body = DEMO_PAGE.read_bytes().replace(b"{{PAGE}}", page.encode())
        self._send(200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, body)
        return 200, "local demo shop"

    def _environments(self) -> tuple[int, str]:
        """The local runtime's execution environments (loopback clients only), for tests that kill them."""
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._error(404, "NOT_FOUND", f"no such endpoint: GET {CONTROL_PATH}", param="path")
            return 404, "gateway"
        found = [env for pool in self.server.pools.values() for env in pool.environments()]
        body = json.dumps({"gateway_pid": os.getpid(), "environments": found}).encode()
        self._send(200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, body)
        return 200, "local runtime"

    def _answer(self) -> tuple[int, str]:
        url = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._error(400, "INVALID_REQUEST", "send the body with a valid Content-Length (no chunked encoding)",
                        param="Content-Length")
            return 400, "gateway"
        if length > MAX_BODY:
            self.close_connection = True
            if length <= DRAIN_LIMIT:  # read it, so the client (still sending) gets the answer, not a broken pipe
                left = length
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    left -= len(chunk)
            self._error(413, "PAYLOAD_TOO_LARGE", f"request body is {length:,} bytes; the limit is {MAX_BODY:,}",
                        param="body")
            return 413, "gateway"
        body = self.rfile.read(length) if length else None
        if self.command in ("GET", "HEAD") and url.path in DEMO_PAGES:
            return self._demo(DEMO_PAGES[url.path])
        if self.server.control and self.command == "GET" and url.path == CONTROL_PATH:
            return self._environments()
        found = self.server.router.match(self.command, url.path)
        if found is None:  # no ANY fallback in the template for this path: API Gateway's own 404 / 405
            allow = self.server.router.allowed(url.path)
            if allow:
                self._error(405, "METHOD_NOT_ALLOWED", f"{self.command} is not allowed on {url.path}; it allows "
                            f"{', '.join(allow)}", param="method", headers={"Allow": ", ".join(allow)})
                return 405, "gateway"
            self._error(404, "NOT_FOUND", f"no such endpoint: {self.command} {url.path}", param="path")
            return 404, "gateway"
        route, pool, params = found
        headers = {k: v for k, v in self.headers.items()}
        event = build_event(route, self.command, url.path, url.query, headers, body, params, self.client_address[0])
        self._request_id = event["requestContext"]["requestId"]
        try:
            result = pool.invoke(event)
        except Exception as exc:  # noqa: BLE001 - a crashed Lambda is a 502 at API Gateway
            sys.stderr.write(f"function {pool.fn.logical_id} crashed: {exc!r}\n")
            self._error(502, "BAD_GATEWAY", "the function failed; see the gateway's log")
            return 502, pool.fn.logical_id
        if not isinstance(result, dict) or not isinstance(result.get("statusCode", 200), int):
            self._error(502, "BAD_GATEWAY", "the function returned a malformed answer")
            return 502, pool.fn.logical_id
        out_headers: dict[str, str] = {}
        for k, v in (result.get("headers") or {}).items():
            out_headers[k] = str(v)
        for k, vs in (result.get("multiValueHeaders") or {}).items():
            out_headers[k] = ", ".join(str(v) for v in vs)
        self._request_id = next((v for k, v in out_headers.items() if k.lower() == "x-request-id"), self._request_id)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        status = int(result.get("statusCode", 200))
        self._send(status, out_headers, data)
        return status, pool.fn.logical_id

    # Every method goes through API Gateway's routing (TRACE, CONNECT and unknown verbs included): never the
    # standard library's 501 page.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = _dispatch

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_") and name[3:].isalpha():
            return self._dispatch
        raise AttributeError(name)


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], router: Router, verbose: bool = False, *,
                 pools: dict[str, FunctionPool] | None = None, control: bool = False) -> None:
        super().__init__(address, _Handler)
        self.router = router
        self.verbose = verbose
        self.pools = pools if pools is not None else {}  # every function's, HTTP or not (CONTROL_PATH lists them)
        self.control = control

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is not an error worth a traceback; anything else still gets one."""
        if isinstance(sys.exc_info()[1], GONE):
            return
        super().handle_error(request, client_address)
