"""The HTTP contract, shared by every API function.

- ``resolver()``: a Powertools REST resolver that validates requests against the pydantic
  models and maps every error to one JSON envelope, once.
- ``respond()``: run one domain call under the rate limit and Idempotency-Key semantics, and
  wrap the result in ``{"success": true, "data": ...}``.
- ``entrypoint()``: the Lambda handler with the same Powertools stack on every function
  (structured logs with the request id, metrics, tracing). Around the route it:
  1. checks ``Tahsil-Version`` (400 naming the header when unknown);
  2. authenticates every /v1 route (key, type, IP allowlist, signature, scope: ``tahsil.api.auth``)
     before the body is validated, as Stripe does: a bad key is a 401 whatever the body;
  3. applies the per-IP public limit to /public/... and /checkout/... paths, before the route
     runs (or to any route built with ``entrypoint(app, rate_class="public")``);
  4. renders the answer for the API version (``tahsil.kernel.versions``) and adds ``X-Request-Id``,
     ``Tahsil-Version`` and the ``X-RateLimit-*`` headers;
  5. sends the request log record to SQS once the answer is ready (``tahsil.api.requestlog``).

Rate limits and the hot path: the per-merchant counters need the merchant, known after the
key lookup. ``respond`` starts them (``tahsil.api.ratelimit.start``, worker threads) and, for an
idempotent POST, takes the idempotency lock meanwhile; the domain action waits for the
counters' verdict, so a refused request never runs it, and the sequential depth of an
authorize stays at four DynamoDB round trips (key, lock || counters, transaction, completion).
"""

from __future__ import annotations

import tahsil.api.lean  # noqa: F401 - first, before Powertools: see tahsil.api.lean

# isort: split

import contextvars
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.metrics import MetricUnit

from tahsil.api import auth, idempotency, ratelimit, requestlog, routes
from tahsil.api.body import check as check_body
from tahsil.api.body import unsupported as unsupported_media_type
from tahsil.api.tracing import drop_unsent_metrics, traced
from tahsil.kernel import clock, versions
from tahsil.kernel.errors import (
    ConcurrentUpdate,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PaymentProcessing,
    RateLimitExceeded,
    TahsilError,
)
from tahsil.kernel.events import Answer, RequestContext
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import logger, metrics

JSON = "application/json"
MAX_IDEMPOTENCY_KEY = 255


def request_id_of(event: dict[str, Any]) -> str:
    """The request's one id: API Gateway's ``requestContext.requestId``, in the header, the body, the logs and
    the events. An event without one (a direct invoke) gets one, written back so every reader sees the same."""
    context = event.get("requestContext")
    if not isinstance(context, dict):
        context = event["requestContext"] = {}
    if not context.get("requestId"):
        context["requestId"] = str(uuid.uuid4())
    return str(context["requestId"])


def _request_id(app: APIGatewayRestResolver) -> str:
    return request_id_of(app.current_event.raw_event)


def _error_body(exc: TahsilError, request_id: str) -> dict[str, Any]:
    return {"success": False, "error": {**exc.body(), "request_id": request_id}}


def _retry_advice(event: dict[str, Any]) -> str:
    headers = {k.lower() for k, v in (event.get("headers") or {}).items() if v is not None}
    return "retry with the same Idempotency-Key" if "idempotency-key" in headers else "retry"


def _worded(exc: TahsilError, event: dict[str, Any]) -> TahsilError:
    """A ConcurrentUpdate says "retry"; it names the Idempotency-Key only when the client sent one."""
    if isinstance(exc, ConcurrentUpdate) and exc.message.endswith("; retry"):
        worded = ConcurrentUpdate(exc.message.removesuffix("retry") + _retry_advice(event), param=exc.param,
                                  **exc.extra)
        return worded
    return exc


def _internal_error(event: dict[str, Any]) -> dict[str, Any]:
    return {"code": "INTERNAL_ERROR", "param": None, "request_id": request_id_of(event),
            "message": f"internal error; it is safe to {_retry_advice(event)}"}


_FIELD_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "json_invalid": "request body is not valid JSON",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number (an integer, no decimals)",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a JSON array",
    "model_type": "must be a JSON object",  # pydantic names the internal model ("instance of Customer")
    "too_short": "has too few items",  # pydantic adds "after validation"
    # A pattern the model did not word (kernel.models.worded): never show the regular expression.
    "string_pattern_mismatch": "is not in the expected form",
}


def _validation_error(errors: list[dict[str, Any]]) -> InvalidRequest:
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    where = loc[0] if loc else "body"
    field = ".".join(loc[1:])
    kind = first.get("type", "")
    if kind == "json_invalid":
        return InvalidRequest("request body is not valid JSON", param="body")
    if not field:
        if kind == "missing":
            return InvalidRequest("request body is required (a JSON object)", param="body")
        return InvalidRequest(f"request body {_FIELD_MESSAGES.get(kind, first.get('msg', 'is invalid'))}", param="body")
    message = _FIELD_MESSAGES.get(kind) or str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    prefix = "query parameter " if where == "query" else ""
    return InvalidRequest(f"{prefix}{field}: {message}", param=field)


_EVENT: contextvars.ContextVar[tuple[Any, Any] | None] = contextvars.ContextVar("tahsil_event", default=None)


class Resolver(APIGatewayRestResolver):
    """Powertools' REST resolver, with the request it is resolving kept per thread (a context variable).

    Powertools keeps ``current_event`` and ``lambda_context`` on its ``BaseRouter`` class, so every
    resolver in a process shares one: two requests resolved at once by two threads (the local
    runtime's execution environments, or any threaded host) read each other's event: body,
    headers, Idempotency-Key and request id. Here each resolution reads its own.
    """

    @property  # type: ignore[override]
    def current_event(self) -> Any:
        held = _EVENT.get()
        if held is None:
            raise RuntimeError("no request is being resolved")
        return held[0]

    @current_event.setter
    def current_event(self, value: Any) -> None:
        held = _EVENT.get()
        _EVENT.set((value, held[1] if held else None))

    @property  # type: ignore[override]
    def lambda_context(self) -> Any:
        held = _EVENT.get()
        return held[1] if held else None

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        held = _EVENT.get()
        _EVENT.set((held[0] if held else None, value))

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        raw = event.raw_event if hasattr(event, "raw_event") else event
        token = _EVENT.set((self._to_proxy_event(raw), context))
        try:
            return super().resolve(raw, context)
        finally:
            _EVENT.reset(token)


def resolver() -> APIGatewayRestResolver:
    app = Resolver(enable_validation=True)

    @app.exception_handler(TahsilError)
    def _domain(exc: TahsilError) -> Response:
        exc = _worded(exc, app.current_event.raw_event)
        return Response(exc.http_status, JSON, json.dumps(_error_body(exc, _request_id(app))),
                        headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return _domain(_validation_error(list(exc.errors())))

    @app.exception_handler(RequestUnsupportedContentType)
    def _media(_: RequestUnsupportedContentType) -> Response:
        try:
            unsupported_media_type(app.current_event.headers.get("Content-Type"))
        except TahsilError as exc:
            return _domain(exc)
        return _domain(InvalidRequest("request body could not be read", param="body"))

    @app.not_found
    def _missing(_: Exception) -> Response:
        return _domain(no_route(app.current_event.raw_event))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return Response(500, JSON, json.dumps({"success": False, "error": _internal_error(app.current_event.raw_event)}))

    return app


def no_route(event: dict[str, Any]) -> TahsilError:
    """A 405 with ``Allow`` when the path has other methods, else a 404."""
    method = str(event.get("httpMethod") or "").upper()
    path = str(event.get("path") or "")
    allow = routes.allowed(path, str(event.get("resource") or "") or None)
    if allow and method not in allow:
        return MethodNotAllowed(f"{method} is not allowed on {path}; it allows {', '.join(allow)}", allow=list(allow),
                                param="method")
    return NotFound(f"no such endpoint: {method} {path}", param="path")


Action = Callable[[Principal, RequestContext], Any]


def _success(data: Any, status: int, message: str | None) -> dict[str, Any]:
    body = {"success": True, "message": message, "data": data} if message else {"success": True, "data": data}
    return {"status": status, "body": body}


class _Answer(Answer):
    """``tahsil.kernel.events.Answer`` over an idempotency ``Completion``: the answer this request gives,
    rendered as ``_run`` renders it, stored by the domain's own transaction."""

    def __init__(self, completion: idempotency.Completion, status: int, message: str | None, request_id: str) -> None:
        self.completion, self.status, self.message, self.request_id = completion, status, message, request_id
        self.pending: dict[str, Any] | None = None

    def ok(self, data: Any) -> list[dict[str, Any]]:
        self.pending = _success(data, self.status, self.message)
        return [self.completion.action(self.pending)]

    def refusal(self, error: Any) -> list[dict[str, Any]]:
        self.pending = {"status": error.http_status, "body": _error_body(error, self.request_id)}
        return [self.completion.action(self.pending)]

    def committed(self) -> None:
        self.completion.done = True


def _run(action: Action, principal: Principal, ctx: RequestContext, status: int,
         message: str | None = None) -> dict[str, Any]:
    """Run the domain call; a final domain refusal is an answer too (and is replayed like one).

    A refusal that may pass later (``TahsilError.retryable``: a race, a pending modification, a 202) is not
    an answer: it propagates, and the idempotency record is dropped so the same-key retry runs again. When the
    domain stored its answer with its effect (``RequestContext.answer``), that stored answer is the answer."""
    bound = ctx.answer if isinstance(ctx.answer, _Answer) else None
    try:
        data = action(principal, ctx)
        result = _success(data, status, message)
    except TahsilError as exc:
        if exc.retryable and not (bound and bound.completion.done):
            raise
        result = {"status": exc.http_status, "body": _error_body(exc, ctx.request_id)}
    if bound is not None and bound.completion.done and bound.pending is not None:
        return bound.pending
    return result


@dataclass
class RequestState:
    """What one request learned on its way through, for the answer's headers and its log record."""

    started: float
    received_at: dt.datetime
    audit: dict[str, Any] = field(default_factory=dict)  # key_id, merchant_id, mode, signature
    principal: Principal | None = None
    version: str | None = None  # the Tahsil-Version header, when sent
    rate: ratelimit.Decision | None = None
    rate_counted: bool = False


_STATE: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar("tahsil_request", default=None)


def current() -> RequestState | None:
    return _STATE.get()


def _start_counters(event: Any, principal: Principal, rate_class: str | None, state: RequestState | None) -> ratelimit.Pending | None:
    if state is not None and state.rate_counted:
        return None
    # Every later log line of this request names its merchant and key (ids, never secrets), beside the
    # API Gateway request id the logger already carries: the access log's requestId leads here.
    logger.append_keys(merchant_id=principal.merchant_id, key_id=principal.key_id, mode=principal.mode)
    cls = rate_class or ratelimit.classify(event.http_method, event.path)
    if cls == "public":
        subject, limit = f"ip:{event.request_context.identity.source_ip}", ratelimit.limit_for("public")
    else:
        subject, limit = principal.merchant_id, ratelimit.limit_for(cls, principal.rate_limits)
    pending = ratelimit.start(subject, cls, limit)
    if state is not None:
        state.rate_counted = True
    return pending


def _gate(pending: ratelimit.Pending | None, state: RequestState | None) -> None:
    """Wait for the counters; over the limit is a 429 (raised before the domain action runs)."""
    if pending is None:
        return
    decision = pending.result()
    if state is not None:
        state.rate = decision
    if not decision.allowed:
        metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
        raise RateLimitExceeded(decision.message(), headers=decision.headers(), limit=decision.limit,
                                window=decision.window)


def respond(app: APIGatewayRestResolver, action: Action, *, status: int = 200,
            principal: Principal | None = None, idempotency_scope: str | None = None,
            rate_class: str | None = None, message: str | None = None) -> Response:
    """Run ``action`` for the authenticated principal under the rate limit and Idempotency-Key.

    The principal is the one ``entrypoint`` authenticated, or the caller's (public endpoints
    know it from their object). ``idempotency_scope`` narrows where an Idempotency-Key lives:
    public endpoints pass their object's id, so a key sent from a browser can never collide
    with one of the merchant's own. ``rate_class`` overrides the class the path implies
    (``tahsil.api.ratelimit.classify``); /public/... paths are limited per IP by ``entrypoint``.
    ``message`` adds seed 002's human-readable ``"message"`` beside ``data`` on success.
    """
    event = app.current_event
    state = current()
    if principal is None:
        principal = state.principal if state is not None and state.principal is not None else \
            auth.authenticate_event(event.raw_event, audit=state.audit if state is not None else None)
    if state is not None:
        state.principal = principal
    key = event.headers.get("Idempotency-Key")  # Powertools' headers are case-insensitive
    ctx = RequestContext(request_id=_request_id(app), idempotency_key=key)
    headers: dict[str, str] = {}
    idempotent = key is not None and event.http_method == "POST"
    if idempotent and (not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY):
        raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters", param="Idempotency-Key")
    pending = _start_counters(event, principal, rate_class, state)
    try:
        if not idempotent:
            _gate(pending, state)
            answer = _run(action, principal, ctx, status, message)
        else:
            def call(completion: idempotency.Completion) -> dict[str, Any]:
                _gate(pending, state)  # under the lock: a refusal deletes the record, so a retry runs
                bound = ctx._replace(answer=_Answer(completion, status, message, ctx.request_id))
                return _run(action, principal, bound, status, message)

            route = event.request_context.resource_path or event.path
            answer = idempotency.run(
                scope=[principal.merchant_id, principal.mode, *([idempotency_scope] if idempotency_scope else []), key],
                request={"method": event.http_method, "route": route, "path": event.path, "body": event.body or ""},
                call=call,
            )
            if answer.get("replayed"):
                _gate(pending, state)  # replays count, and are refused over the limit, as Stripe does
                headers["Idempotent-Replayed"] = "true"
    except RateLimitExceeded:
        raise
    except PaymentProcessing as pending:
        # 202: the processor's answer is not known yet. Nothing is stored under the Idempotency-Key, so a
        # retry with it asks again (tahsil.payments.processing) and gets the eventual outcome.
        metrics.add_metric(name="Responses2xx", unit=MetricUnit.Count, value=1)
        return Response(202, JSON, json.dumps({"success": True, "data": pending.data}), headers=headers or None)
    except TahsilError:
        _gate(pending, state)  # over the limit, the 429 wins over idempotency's 409s
        raise
    metrics.add_metric(name=f"Responses{answer['status'] // 100}xx", unit=MetricUnit.Count, value=1)
    body = answer["body"]
    if isinstance(body.get("error"), dict) and body["error"].get("request_id") != ctx.request_id:
        # a replayed refusal (a stored 402...) is this request's answer: it carries this request's id
        body = {**body, "error": {**body["error"], "request_id": ctx.request_id}}
    return Response(answer["status"], JSON, json.dumps(body), headers=headers or None)


# ---------------------------------------------------------------- the Lambda handler


def _set_header(response: dict[str, Any], name: str, value: str) -> None:
    if "multiValueHeaders" in response:
        response["multiValueHeaders"] = response.get("multiValueHeaders") or {}
        response["multiValueHeaders"][name] = [value]
    else:
        response.setdefault("headers", {})
        response["headers"] = response["headers"] or {}
        response["headers"][name] = value


def _header(response: dict[str, Any], name: str) -> str | None:
    for k, v in (response.get("headers") or {}).items():
        if k.lower() == name.lower():
            return str(v)
    for k, vs in (response.get("multiValueHeaders") or {}).items():
        if k.lower() == name.lower() and vs:
            return str(vs[-1])
    return None


def _error_response(event: dict[str, Any], exc: TahsilError) -> dict[str, Any]:
    request_id = request_id_of(event)
    exc = _worded(exc, event)
    headers = {"Content-Type": [JSON]}
    for k, v in (getattr(exc, "headers", None) or {}).items():
        headers[k] = [v]
    return {"statusCode": exc.http_status, "body": json.dumps(_error_body(exc, request_id)), "isBase64Encoded": False,
            "multiValueHeaders": headers}


def _before(event: dict[str, Any], state: RequestState, rate_class: str | None, authenticate: bool,
            fallback: bool = False) -> dict[str, Any] | None:
    """Checks that run before the route; an answer here ends the request."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
    path = str(event.get("path") or "")
    method = str(event.get("httpMethod") or "").upper()
    resource = str(event.get("resource") or path)
    try:
        wanted = headers.get("tahsil-version")
        if wanted is not None:
            if wanted.strip() not in versions.NAMES:
                raise InvalidRequest(f"Tahsil-Version: unknown API version {wanted.strip()!r}; known versions: "
                                     f"{', '.join(versions.NAMES)}", param="Tahsil-Version")
            state.version = wanted.strip()
        if fallback:
            raise no_route(event)
        if authenticate and path.startswith("/v1/") and (method, resource) not in auth.OPEN_ROUTES:
            state.principal = auth.authenticate_event(event, audit=state.audit)
        check_body(event)  # after the key, as Stripe does: a bad key is a 401 whatever the body
        if rate_class == "public" or (rate_class is None and path.startswith(ratelimit.PUBLIC_PREFIXES)):
            source = ((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp") or "unknown"
            decision = ratelimit.check(f"ip:{source}", "public", ratelimit.limit_for("public"))
            state.rate, state.rate_counted = decision, True
            if not decision.allowed:
                metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
                raise RateLimitExceeded(decision.message(), headers=decision.headers(), limit=decision.limit,
                                        window=decision.window)
    except TahsilError as exc:
        return _error_response(event, exc)
    return None


def _after(response: dict[str, Any], event: dict[str, Any], state: RequestState) -> tuple[str, str | None]:
    """Render the answer for its API version and add the headers; return (version, error code)."""
    version = state.version or (state.principal.api_version if state.principal is not None else versions.LATEST)
    if version not in versions.NAMES:
        version = versions.LATEST
    error_code = None
    content_type = _header(response, "Content-Type") or ""
    body = response.get("body")
    if JSON in content_type and isinstance(body, str) and body.startswith("{") and not response.get("isBase64Encoded"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "success" in parsed:
            if isinstance(parsed.get("error"), dict):
                error_code = parsed["error"].get("code")
            if version != versions.LATEST:
                response["body"] = json.dumps(versions.render(parsed, version, "response"))
            _set_header(response, "Tahsil-Version", version)
    _set_header(response, "X-Request-Id", request_id_of(event))
    if state.rate is not None:
        for name, value in state.rate.headers().items():
            _set_header(response, name, value)
    return version, error_code


def _log(event: dict[str, Any], response: dict[str, Any], state: RequestState, version: str, error_code: str | None) -> None:
    path = str(event.get("path") or "")
    if not (path.startswith("/v1/") or path.startswith("/public/")):
        return
    p = state.principal
    context = event.get("requestContext") or {}
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
    idem = headers.get("idempotency-key")
    record = requestlog.Record(
        request_id=request_id_of(event),
        received_at=clock.sortable(state.received_at),
        merchant_id=p.merchant_id if p is not None else state.audit.get("merchant_id"),
        mode=p.mode if p is not None else state.audit.get("mode"),
        key_id=(p.key_id if p is not None and p.key_type in ("secret", "publishable") else state.audit.get("key_id")),
        method=str(event.get("httpMethod") or ""),
        path=path,
        route=str(event.get("resource") or path),
        status=int(response.get("statusCode", 200)),
        latency_ms=int((time.perf_counter() - state.started) * 1000),
        rate_limit=state.rate.record() if state.rate is not None else {"outcome": "not_counted"},
        signature=state.audit.get("signature") or {"outcome": "not_required", "reason": None, "drift_s": None},
        body_sha256=requestlog.body_sha256(event),
        idempotency_key=idem[:255] if idem else None,
        source_ip=(context.get("identity") or {}).get("sourceIp"),
        api_version=version,
        error_code=error_code,
        user=state.audit.get("user"),  # a dashboard user (tahsil.console.cognito), else None
    )
    requestlog.send(record)


# Base paths the API is also served under: seed 002's ``/api/v1`` and ``/api/public``. API Gateway's
# custom-domain base-path mapping ``api`` (template.yaml, ApiBasePathMapping) and the local gateway pass
# the path with the base path in it, while the resource path never has it.
BASE_PATHS = ("/api",)


def canonical(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its path as the API defines it (``/v1/...``, ``/public/...``): the resolver,
    authentication (scopes, request signatures), rate-limit classes, idempotency and the request
    log all see one path whichever base path the client used."""
    path = str(event.get("path") or "")
    resource = str(event.get("resource") or "")
    for base in BASE_PATHS:
        if path.startswith(base + "/") and not resource.startswith(base + "/"):
            return {**event, "path": path[len(base):]}
    return event


def entrypoint(app: APIGatewayRestResolver | None, *, rate_class: str | None = None, authenticate: bool = True,
               fallback: bool = False) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler. ``rate_class="public"`` applies the per-IP limit to a route outside /public/;
    ``authenticate=False`` opts a /v1 route out of API-key authentication (it then authenticates itself).
    ``fallback=True`` (``app`` None) is the handler API Gateway calls for a method or path no route has:
    405 with ``Allow``, or 404, with no key needed, in the same envelope, headers and request log."""

    @logger.inject_lambda_context(clear_state=True)
    @drop_unsent_metrics(metrics)
    @traced
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        event = canonical(event)
        state = RequestState(started=time.perf_counter(), received_at=clock.now())
        token = _STATE.set(state)
        # The correlation id is kept per thread (Powertools' thread-safe keys), not on the shared logger.
        logger.thread_safe_append_keys(correlation_id=request_id_of(event))
        try:
            idempotency.register_context(context)
            try:
                response = _before(event, state, rate_class, authenticate, fallback)
                if response is None:
                    assert app is not None, "only a fallback entrypoint has no resolver"
                    response = app.resolve(event, context)
            except Exception:  # noqa: BLE001 - e.g. the key lookup failed: a 500 envelope, never a crash
                logger.exception("unhandled error before the route")
                response = {"statusCode": 500, "isBase64Encoded": False, "multiValueHeaders": {"Content-Type": [JSON]},
                            "body": json.dumps({"success": False, "error": _internal_error(event)})}
            version, error_code = _after(response, event, state)
        finally:
            _STATE.reset(token)
            logger.thread_safe_remove_keys(["correlation_id"])
        _log(event, response, state, version, error_code)
        return response

    return handler
