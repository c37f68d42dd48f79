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

import contextvars
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from tahsil.api import auth, idempotency, ratelimit, requestlog
from tahsil.api.tracing import drop_unsent_metrics, traced
from tahsil.kernel import clock, versions
from tahsil.kernel.errors import (
    ConcurrentUpdate,
    InvalidRequest,
    NotFound,
    PaymentProcessing,
    RateLimitExceeded,
    TahsilError,
)
from tahsil.kernel.events import RequestContext
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import logger, metrics

JSON = "application/json"
MAX_IDEMPOTENCY_KEY = 255


def _request_id(app: APIGatewayRestResolver) -> str:
    return app.current_event.request_context.request_id or "local"


def envelope_error(app: APIGatewayRestResolver, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    body = {**body, "request_id": _request_id(app)}
    return Response(status, JSON, json.dumps({"success": False, "error": body}), headers=headers)


def _error_body(exc: TahsilError, request_id: str) -> dict[str, Any]:
    return {"success": False, "error": {**exc.body(), "request_id": request_id}}


_FIELD_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "json_invalid": "request body is not valid JSON",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "int_type": "must be an integer",
    "string_type": "must be a string",
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


def resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(TahsilError)
    def _domain(exc: TahsilError) -> Response:
        return Response(exc.http_status, JSON, json.dumps(_error_body(exc, _request_id(app))),
                        headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return _domain(_validation_error(list(exc.errors())))

    @app.not_found
    def _missing(_: Exception) -> Response:
        return _domain(NotFound("no such endpoint", param="path"))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        body = {"code": "INTERNAL_ERROR", "message": "internal error; it is safe to retry with the same Idempotency-Key",
                "param": None}
        return envelope_error(app, 500, body)

    return app


Action = Callable[[Principal, RequestContext], Any]


def _run(action: Action, principal: Principal, ctx: RequestContext, status: int) -> dict[str, Any]:
    """Run the domain call; a domain refusal is an answer too (and is replayed like one)."""
    try:
        return {"status": status, "body": {"success": True, "data": action(principal, ctx)}}
    except (ConcurrentUpdate, PaymentProcessing):
        raise  # not an answer (yet): the idempotency record is dropped so the client may retry
    except TahsilError as exc:
        return {"status": exc.http_status, "body": _error_body(exc, ctx.request_id)}


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
            rate_class: str | None = None) -> Response:
    """Run ``action`` for the authenticated principal under the rate limit and Idempotency-Key.

    The principal is the one ``entrypoint`` authenticated, or the caller's (public endpoints
    know it from their object). ``idempotency_scope`` narrows where an Idempotency-Key lives:
    public endpoints pass their object's id, so a key sent from a browser can never collide
    with one of the merchant's own. ``rate_class`` overrides the class the path implies
    (``tahsil.api.ratelimit.classify``); /public/... paths are limited per IP by ``entrypoint``.
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
            answer = _run(action, principal, ctx, status)
        else:
            def call() -> dict[str, Any]:
                _gate(pending, state)  # under the lock: a refusal deletes the record, so a retry runs
                return _run(action, principal, ctx, status)

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
    return Response(answer["status"], JSON, json.dumps(answer["body"]), headers=headers or None)


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
    request_id = (event.get("requestContext") or {}).get("requestId") or "local"
    headers = {"Content-Type": [JSON]}
    for k, v in (getattr(exc, "headers", None) or {}).items():
        headers[k] = [v]
    return {"statusCode": exc.http_status, "body": json.dumps(_error_body(exc, request_id)), "isBase64Encoded": False,
            "multiValueHeaders": headers}


def _before(event: dict[str, Any], state: RequestState, rate_class: str | None, authenticate: bool) -> dict[str, Any] | None:
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
        if authenticate and path.startswith("/v1/") and (method, resource) not in auth.OPEN_ROUTES:
            state.principal = auth.authenticate_event(event, audit=state.audit)
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
    request_id = (event.get("requestContext") or {}).get("requestId", "local")
    _set_header(response, "X-Request-Id", request_id)
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
        request_id=context.get("requestId") or "local",
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


def entrypoint(app: APIGatewayRestResolver, *, rate_class: str | None = None,
               authenticate: bool = True) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler. ``rate_class="public"`` applies the per-IP limit to a route outside /public/;
    ``authenticate=False`` opts a /v1 route out of API-key authentication (it then authenticates itself)."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @drop_unsent_metrics(metrics)
    @traced
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        state = RequestState(started=time.perf_counter(), received_at=clock.now())
        token = _STATE.set(state)
        try:
            idempotency.register_context(context)
            try:
                response = _before(event, state, rate_class, authenticate) or app.resolve(event, context)
            except Exception:  # noqa: BLE001 - e.g. the key lookup failed: a 500 envelope, never a crash
                logger.exception("unhandled error before the route")
                response = {"statusCode": 500, "isBase64Encoded": False, "multiValueHeaders": {"Content-Type": [JSON]},
                            "body": json.dumps({"success": False, "error": {
                                "code": "INTERNAL_ERROR", "param": None,
                                "message": "internal error; it is safe to retry with the same Idempotency-Key",
                                "request_id": (event.get("requestContext") or {}).get("requestId", "local")}})}
            version, error_code = _after(response, event, state)
        finally:
            _STATE.reset(token)
        _log(event, response, state, version, error_code)
        return response

    return handler
