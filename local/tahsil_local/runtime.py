"""Execution environments as Lambda runs them: one process each, driven through the Lambda Runtime API.

Each execution environment is its own Python process running ``awslambdaric``, the runtime
interface client of AWS's Python base images (``tahsil_local.bootstrap`` starts it, as
``/var/runtime/bootstrap`` does in Lambda). It talks to a small Runtime API that this module
serves for it on 127.0.0.1:

- ``GET  /2018-06-01/runtime/invocation/next``            wait for the next event
- ``POST /2018-06-01/runtime/invocation/{id}/response``   the handler's result
- ``POST /2018-06-01/runtime/invocation/{id}/error``      an unhandled exception
- ``POST /2018-06-01/runtime/init/error``                 the handler module failed to import

So module state (Powertools' idempotency config, metrics, caches, context variables) belongs to
one environment, as deployed; only the AWS services (moto) are shared.

A function's pool keeps Lambda's semantics: an environment serves one invocation at a time; an
invocation that finds no idle environment starts a new one (a cold start: a new process imports
the handler module and the layer); idle environments are reused, the most recent first. An
environment whose process exits, fails its init or overruns the function's timeout is discarded,
as Lambda discards it, and one idle for ``TAHSIL_IDLE_TIMEOUT`` seconds (300) is stopped, as Lambda
reclaims idle ones. A process killed mid-invocation (``kill -9``: a dead Lambda) fails that invocation
(the front door answers 502) and the next one gets a new environment; an invocation handed to a warm
environment that died idle, before taking it, runs on another one (nothing of it ran). At most one
environment per core initialises at a time (``PARALLEL_INITS``): a request waiting for its turn
takes an environment that comes back idle meanwhile.
``FunctionPool.stop`` ends every process of the pool.

A real account limits concurrency too (a function's reserved concurrency, the account's limit);
the local runtime has limits of its own, sized for a laptop rather than for AWS: at most
``MAX_PER_FUNCTION`` environments of one function (``TAHSIL_MAX_ENVIRONMENTS_PER_FUNCTION``,
default twice the cores, at least 2) and ``MAX_ENVIRONMENTS`` in all
(``TAHSIL_MAX_ENVIRONMENTS``, default four times the cores, at least 8). Where Lambda would
throttle, an invocation here waits for an environment of its function to come back idle (as
a client that retries a throttled call would); at the overall limit, the environment of another
function that has been idle longest is stopped to make room. Each environment is still its own
process serving one request at a time: a burst of 40 requests on 2 cores runs on 4
environments of its function instead of starting 20 to 30 processes (about 60 MB each) that
the 2 cores could not run at once anyway.

Each process gets the function's own environment variables from template.yaml (not the other
functions'), the Lambda runtime's reserved variables (``AWS_LAMBDA_FUNCTION_NAME``, ``_HANDLER``,
``LAMBDA_TASK_ROOT``, ``AWS_LAMBDA_RUNTIME_API``...), and the local AWS endpoint and credentials.
"""

from __future__ import annotations

import json
import os
import queue
import re
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tahsil_local.template import Function

API_VERSION = "/2018-06-01/runtime"
# Lambda gives a function's init 10 s; a laptop starting many environments at once is slower.
INIT_TIMEOUT_S = float(os.environ.get("TAHSIL_INIT_TIMEOUT", "60"))
# In Lambda every environment has its own CPU; here they share the machine's. A burst of cold
# starts (40 at once) would starve the handlers already running past their timeout, so at most
# this many environments initialise at a time. A request waiting for its turn takes an
# environment that comes back idle meanwhile (it would have found it idle a moment later).
PARALLEL_INITS = int(os.environ.get("TAHSIL_PARALLEL_INITS", "0")) or max(2, os.cpu_count() or 2)
_INIT_SLOTS = threading.BoundedSemaphore(PARALLEL_INITS)
# Concurrency limits (see the module's docstring): per function, and over every function.
MAX_PER_FUNCTION = int(os.environ.get("TAHSIL_MAX_ENVIRONMENTS_PER_FUNCTION", "0")) or max(2, 2 * (os.cpu_count() or 1))
MAX_ENVIRONMENTS = max(int(os.environ.get("TAHSIL_MAX_ENVIRONMENTS", "0")) or max(8, 4 * (os.cpu_count() or 1)),
                       MAX_PER_FUNCTION)
# Lambda reclaims environments that stay idle; so does the local runtime, after this long.
IDLE_TIMEOUT_S = float(os.environ.get("TAHSIL_IDLE_TIMEOUT", "300"))
# An invocation handed to a warm environment that turns out dead (killed while idle) is tried on this many.
UNDELIVERED_TRIES = 3
_RESULT_PATH = re.compile(rf"^{re.escape(API_VERSION)}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")


class FunctionError(Exception):
    """The invocation failed: an unhandled exception in the handler, a failed init, a timeout or a crash.

    ``payload`` is what Lambda's Invoke API returns then (``errorType``, ``errorMessage``...).
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.error_type = str(payload.get("errorType") or "Unhandled")
        super().__init__(f"{self.error_type}: {payload.get('errorMessage', '')}")


@dataclass
class _Invocation:
    request_id: str
    body: bytes
    picked: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    deadline_ms: int = 0
    delivered: bool = False  # the process took it from /next: from then on only its own answer (or death) ends it
    result: bytes | None = None
    error: dict[str, Any] | None = None


class _Undelivered(FunctionError):
    """A warm environment died before it took the invocation (killed while idle): nothing of the function ran,
    so the pool hands the invocation to another environment, as Lambda places an invoke on a live one."""


class _RuntimeApi(BaseHTTPRequestHandler):
    """The Runtime API of one execution environment."""

    server: _RuntimeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != f"{API_VERSION}/invocation/next":
            self._reply(404, b'{"errorType":"InvalidRequest","errorMessage":"no such Runtime API path"}')
            return
        invocation = self.server.environment.next_invocation(gone=self._caller_gone)
        if invocation is None:  # the environment is being stopped, or its process died waiting
            self.close_connection = True
            self._reply(410, b'{"errorType":"Runtime.Stopped","errorMessage":"the environment is stopping"}')
            return
        env = self.server.environment
        self._reply(200, invocation.body, {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": env.function_arn,
            "Content-Type": "application/json",
        })

    def _caller_gone(self) -> bool:
        """The process waiting on /next has died (its socket closed): it will never take an invocation."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = self.server.environment
        if self.path == f"{API_VERSION}/init/error":
            env.init_failed(_error_payload(body, self.headers.get("Lambda-Runtime-Function-Error-Type")))
            self._reply(202, b'{"status":"OK"}')
            return
        found = _RESULT_PATH.match(self.path)
        if found is None:
            self._reply(404, b'{"errorType":"InvalidRequest","errorMessage":"no such Runtime API path"}')
            return
        if found["kind"] == "response":
            accepted = env.finish(found["id"], result=body)
        else:
            accepted = env.finish(found["id"], error=_error_payload(body, self.headers.get("Lambda-Runtime-Function-Error-Type")))
        if accepted:
            self._reply(202, b'{"status":"OK"}')
        else:
            self._reply(400, b'{"errorType":"InvalidRequestID","errorMessage":"no such invocation in progress"}')


def _error_payload(body: bytes, error_type: str | None) -> dict[str, Any]:
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        payload = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(payload, dict):
        payload = {"errorMessage": str(payload)}
    payload.setdefault("errorType", error_type or "Unhandled")
    return payload


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeApi)
        self.environment = environment

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the environment's process was stopped while its call was open
        super().handle_error(request, client_address)


class Environment:
    """One execution environment: a process running awslambdaric against its own Runtime API port."""

    def __init__(self, fn: Function, variables: Mapping[str, str], *, init_slot_held: bool = False) -> None:
        self.fn = fn
        self.function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{fn.logical_id}"
        self.alive = True
        self.started = time.monotonic()
        self.idle_since = self.started
        self.init_ms: float | None = None
        self._inbox: queue.Queue[_Invocation | None] = queue.Queue()
        self._current: _Invocation | None = None
        self._init_error: dict[str, Any] | None = None
        self._lock = threading.Lock()
        # An init slot, released at the first /next or at exit.
        self._initialising = init_slot_held or _INIT_SLOTS.acquire(timeout=INIT_TIMEOUT_S)
        self.started = time.monotonic()
        self._api = _RuntimeApiServer(self)
        threading.Thread(target=self._api.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True,
                         name=f"runtime-api:{fn.logical_id}").start()
        env = {**variables, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self._api.server_address[1]}",
               "TAHSIL_RUNTIME_PARENT": str(os.getpid())}
        # Its own session: a Ctrl-C at the terminal reaches the gateway, which stops the
        # environments in order, rather than every handler at once mid-request.
        self.process = subprocess.Popen([sys.executable, "-m", "tahsil_local.bootstrap", fn.handler],
                                        cwd=fn.code_dir, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=self._watch, daemon=True, name=f"runtime-watch:{fn.logical_id}").start()

    # ---- called by the Runtime API

    def _init_done(self) -> None:
        with self._lock:
            held, self._initialising = self._initialising, False
        if held:
            _INIT_SLOTS.release()

    def next_invocation(self, gone: Callable[[], bool] = lambda: False) -> _Invocation | None:
        if self.init_ms is None:
            self.init_ms = (time.monotonic() - self.started) * 1000
            self._init_done()
        while self.alive:
            try:
                invocation = self._inbox.get(timeout=0.5)
            except queue.Empty:
                if gone():
                    return None
                continue
            if invocation is None:
                return None
            if gone():  # killed while idle: the invocation stays undelivered (``_watch`` fails it, and it runs elsewhere)
                self._inbox.put(invocation)
                return None
            with self._lock:
                self._current = invocation
                invocation.deadline_ms = int((time.time() + self.fn.timeout) * 1000)
                invocation.delivered = True
            invocation.picked.set()
            return invocation
        return None

    def finish(self, request_id: str, *, result: bytes | None = None, error: dict[str, Any] | None = None) -> bool:
        with self._lock:
            invocation = self._current
            if invocation is None or invocation.request_id != request_id:
                return False
            self._current = None
        invocation.result, invocation.error = result, error
        invocation.done.set()
        return True

    def init_failed(self, payload: dict[str, Any]) -> None:
        self._init_error = payload  # awslambdaric exits next; _watch fails what was waiting

    # ---- the process

    def _watch(self) -> None:
        code = self.process.wait()
        self.alive = False
        self._init_done()
        error = self._init_error or {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"Runtime exited with error: exit status {code}",
        }
        with self._lock:
            pending, self._current = self._current, None
        waiting = [pending] if pending else []
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                waiting.append(item)
        for invocation in waiting:
            invocation.error = error
            invocation.picked.set()
            invocation.done.set()
        self._api.shutdown()
        self._api.server_close()

    @property
    def state(self) -> str:
        """``init`` (its process is importing the handler), ``busy`` (a handler runs an invocation) or ``idle``."""
        if self.init_ms is None:
            return "init"
        return "busy" if self._current is not None else "idle"

    def invoke(self, body: bytes, request_id: str | None = None) -> bytes | None:
        invocation = _Invocation(request_id or str(uuid.uuid4()), body)
        warm = self.init_ms is not None
        self._inbox.put(invocation)
        if not self._wait(invocation.picked, INIT_TIMEOUT_S if self.init_ms is None else self.fn.timeout + 5):
            code = self.process.poll()
            self._abandon(invocation, {"errorType": "Runtime.InitTimeout",
                                       "errorMessage": f"init did not finish in {INIT_TIMEOUT_S:.0f} seconds"}
                          if code is None else
                          {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited with error: exit status {code}"})
        elif not invocation.done.wait(self.fn.timeout + 1):
            self._abandon(invocation, {"errorType": "Sandbox.Timedout",
                                       "errorMessage": f"Task timed out after {self.fn.timeout:.2f} seconds"})
        if invocation.error is not None:
            if warm and not invocation.delivered:
                raise _Undelivered(invocation.error)
            raise FunctionError(invocation.error)
        return invocation.result

    def _wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait for ``event``; give up early if the process is gone (it died before taking the invocation)."""
        deadline = time.monotonic() + timeout
        while not event.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return False
            if self.process.poll() is not None and not event.wait(1.0):
                return False  # _watch fails what it finds; this invocation came in after it looked
        return True

    def _abandon(self, invocation: _Invocation, error: dict[str, Any]) -> None:
        """A timeout: Lambda stops the environment; its next invocation is a cold start."""
        with self._lock:
            if self._current is invocation:
                self._current = None
            if not invocation.done.is_set():
                invocation.error = error
                invocation.done.set()
        self.alive = False
        self.process.kill()

    def stop(self, wait: float = 5.0) -> None:
        self.alive = False
        self._inbox.put(None)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=wait)


class FunctionPool:
    """A function's execution environments (see the module's docstring)."""

    def __init__(self, fn: Function, variables: Mapping[str, str] | None = None) -> None:
        self.fn = fn
        self.variables = {
            **(os.environ if variables is None else variables),
            "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.logical_id}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": str(fn.code_dir),
            "_HANDLER": fn.handler,
            "TZ": ":UTC",
        }
        self.cold_starts = 0
        self.max_environments = MAX_PER_FUNCTION
        self._idle: list[Environment] = []
        self._all: set[Environment] = set()
        self._starting = 0  # cold starts decided, their Environment not yet in _all
        self._lock = threading.Condition()
        self._stopped = False
        _Capacity.register(self)

    def _forget(self, env: Environment) -> None:
        """Drop an environment from the pool (under self._lock); its place in the overall limit is freed."""
        if env in self._all:
            self._all.discard(env)
            _Capacity.release()

    def _checkout(self) -> Environment | None:
        """An idle environment, or None once an init slot and a place under the limits are held for a new
        one (a cold start)."""
        while True:
            evict = False
            with self._lock:
                if self._stopped:
                    raise FunctionError({"errorType": "Runtime.Stopped", "errorMessage": "the local runtime is stopping"})
                while self._idle:
                    candidate = self._idle.pop()
                    if candidate.alive:
                        return candidate
                    self._forget(candidate)
                if len(self._all) + self._starting < self.max_environments:
                    if not _Capacity.take():
                        evict = True  # the overall limit: make room below, outside this pool's lock
                    elif _INIT_SLOTS.acquire(blocking=False):
                        self.cold_starts += 1
                        self._starting += 1
                        return None
                    else:
                        _Capacity.release()
                if not evict:
                    self._lock.wait(0.05)  # an environment may come back idle, or an init slot free up
            if evict and not _Capacity.evict_idle(exclude=self):
                time.sleep(0.05)  # every environment is busy: wait for one to finish

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """Run one invocation (``request_id``: Lambda's, the context's ``aws_request_id``; a new one by
        default); its JSON result, or FunctionError.

        An environment killed while idle (``kill -9`` of its process) may be handed out before the pool has
        seen it die; the invocation it never took goes to another environment. One killed during its init or
        while running the invocation fails it (API Gateway answers 502), as in Lambda, and is discarded: the
        next invocation starts a new one."""
        body = json.dumps(event).encode()
        for attempt in range(UNDELIVERED_TRIES):
            env = self._checkout()
            if env is None:
                try:
                    env = Environment(self.fn, {**self.variables, "AWS_LAMBDA_LOG_STREAM_NAME": uuid.uuid4().hex},
                                      init_slot_held=True)
                except BaseException:
                    _INIT_SLOTS.release()
                    with self._lock:
                        self._starting -= 1
                    _Capacity.release()
                    raise
                with self._lock:
                    self._starting -= 1
                    self._all.add(env)
                    stopped = self._stopped
                if stopped:
                    env.stop()
            try:
                result = env.invoke(body, request_id)
            except _Undelivered:
                if attempt + 1 == UNDELIVERED_TRIES:
                    raise
                continue
            finally:
                with self._lock:
                    if env.alive and not self._stopped:
                        env.idle_since = time.monotonic()
                        self._idle.append(env)
                        self._lock.notify()
                    else:
                        self._forget(env)
            break
        _Reaper.ensure(self)
        return json.loads(result) if result else None

    def reap(self, max_idle: float, now: float | None = None) -> int:
        """Stop the environments idle for ``max_idle`` seconds or more; how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [env for env in self._idle if now - env.idle_since >= max_idle]
            self._idle = [env for env in self._idle if env not in old]
            for env in old:
                self._forget(env)
        for env in old:
            env.stop()
        return len(old)

    def evict_oldest_idle(self) -> float | None:
        """Stop the environment idle longest (to make room under the overall limit); when it went idle."""
        with self._lock:
            dead = [env for env in self._idle if not env.alive]
            for env in dead:  # exited while idle: their places are free at once
                self._idle.remove(env)
                self._forget(env)
            if dead:
                return 0.0
            live = list(self._idle)
            if not live:
                return None
            env = min(live, key=lambda e: e.idle_since)
            self._idle.remove(env)
            self._forget(env)
        env.stop()
        return env.idle_since

    def oldest_idle(self) -> float | None:
        with self._lock:
            return min((env.idle_since for env in self._idle), default=None)

    def environments(self) -> list[dict[str, Any]]:
        """This function's live environments: process id, ``state`` (init, busy, idle) and age in seconds."""
        now = time.monotonic()
        with self._lock:
            envs = [env for env in self._all if env.alive]
        return [{"function": self.fn.logical_id, "pid": env.process.pid, "state": env.state,
                 "age_s": round(now - env.started, 1)} for env in envs]

    @property
    def processes(self) -> list[int]:
        with self._lock:
            return [env.process.pid for env in self._all if env.alive]

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            envs, self._idle = list(self._all), []
            for env in envs:
                self._forget(env)
        for env in envs:
            env.alive = False
            env._inbox.put(None)
            if env.process.poll() is None:
                env.process.terminate()
        for env in envs:
            env.stop()


class _Capacity:
    """The overall limit on environments (``MAX_ENVIRONMENTS``), over every pool of this process."""

    _lock = threading.Lock()
    _used = 0
    _pools: weakref.WeakSet[FunctionPool] = weakref.WeakSet()

    @classmethod
    def register(cls, pool: FunctionPool) -> None:
        with cls._lock:
            cls._pools.add(pool)

    @classmethod
    def take(cls) -> bool:
        with cls._lock:
            if cls._used >= MAX_ENVIRONMENTS:
                return False
            cls._used += 1
            return True

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._used = max(0, cls._used - 1)

    @classmethod
    def in_use(cls) -> int:
        with cls._lock:
            return cls._used

    @classmethod
    def evict_idle(cls, exclude: FunctionPool) -> bool:
        """Stop the environment of another function that has been idle longest; False if none is idle."""
        with cls._lock:
            pools = [p for p in cls._pools if p is not exclude]
        ranked = sorted(((since, id(p), p) for p in pools if (since := p.oldest_idle()) is not None),
                        key=lambda t: t[:2])
        return any(pool.evict_oldest_idle() is not None for _, _, pool in ranked)


class _Reaper:
    """One thread that reclaims idle environments of every pool (``IDLE_TIMEOUT_S``)."""

    _lock = threading.Lock()
    _pools: weakref.WeakSet[FunctionPool] = weakref.WeakSet()
    _thread: threading.Thread | None = None

    @classmethod
    def ensure(cls, pool: FunctionPool) -> None:
        with cls._lock:
            cls._pools.add(pool)
            if cls._thread is None:
                cls._thread = threading.Thread(target=cls._run, daemon=True, name="runtime-reaper")
                cls._thread.start()

    @classmethod
    def _run(cls) -> None:
        while True:
            time.sleep(min(30.0, max(1.0, IDLE_TIMEOUT_S / 4)))
            with cls._lock:
                pools = list(cls._pools)
            for pool in pools:
                pool.reap(IDLE_TIMEOUT_S)


def base_variables(function_variables: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """What every environment inherits from the runtime's own environment: everything but the
    functions' template variables (each environment gets only its own function's)."""
    names = {name for variables in function_variables.values() for name in variables}
    return {k: v for k, v in os.environ.items() if k not in names}
