"""The HTTP contract, shared by every API function.

- ``resolver()``: a Powertools REST resolver that validates requests against the pydantic
  models and maps every error to one JSON envelope, once.
- ``respond()``: authenticate, run one domain call under Idempotency-Key semantics, and
  wrap the result in ``{"success": true, "data": ...}``.
- ``entrypoint()``: the Lambda handler with the same Powertools stack on every function
  (structured logs with the request id, metrics, tracing) and ``X-Request-Id`` on every answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from tahsil import idempotency
from tahsil.auth import Principal, authenticate
from tahsil.errors import ConcurrentUpdate, InvalidRequest, NotFound, TahsilError
from tahsil.events import RequestContext

logger = Logger(service="tahsil")
tracer = Tracer(service="tahsil")
metrics = Metrics(namespace="Tahsil", service="tahsil")

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
        return Response(exc.http_status, JSON, json.dumps(_error_body(exc, _request_id(app))))

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
    except ConcurrentUpdate:
        raise  # not an answer: the idempotency record is dropped so the client may retry
    except TahsilError as exc:
        return {"status": exc.http_status, "body": _error_body(exc, ctx.request_id)}


def respond(app: APIGatewayRestResolver, action: Action, *, status: int = 200,
            principal: Principal | None = None) -> Response:
    """Authenticate (unless the caller already knows the principal, as public endpoints do), then run."""
    event = app.current_event
    if principal is None:
        principal = authenticate(dict(event.headers or {}))
    key = event.headers.get("Idempotency-Key")  # Powertools' headers are case-insensitive
    ctx = RequestContext(request_id=_request_id(app), idempotency_key=key)
    headers: dict[str, str] = {}
    if key is None or event.http_method != "POST":
        answer = _run(action, principal, ctx, status)
    else:
        if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters", param="Idempotency-Key")
        route = event.request_context.resource_path or event.path
        answer = idempotency.run(
            scope=[principal.merchant_id, principal.mode, key],
            request={"method": event.http_method, "route": route, "path": event.path, "body": event.body or ""},
            call=lambda: _run(action, principal, ctx, status),
        )
        if answer.get("replayed"):
            headers["Idempotent-Replayed"] = "true"
    metrics.add_metric(name=f"Responses{answer['status'] // 100}xx", unit=MetricUnit.Count, value=1)
    return Response(answer["status"], JSON, json.dumps(answer["body"]), headers=headers or None)


def entrypoint(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        idempotency.register_context(context)
        response = app.resolve(event, context)
        request_id = (event.get("requestContext") or {}).get("requestId", "local")
        if "multiValueHeaders" in response:
            response["multiValueHeaders"]["X-Request-Id"] = [request_id]
        else:
            response.setdefault("headers", {})["X-Request-Id"] = request_id
        return response

    return handler
