"""The response envelope every API answer shares: ``{"success": false, "error": {code, message, param,
request_id}}`` for a refusal, the request's one id, the wording of validation errors, 404 and 405.

Used by the resolver (``tahsil.api.resolver``), ``respond`` (``tahsil.api.http``) and the Lambda handler
(``tahsil.api.handler``), so a refusal reads the same wherever it is made.
"""

from __future__ import annotations

import uuid
from typing import Any

from tahsil.api import routes
from tahsil.kernel.errors import ConcurrentUpdate, InvalidRequest, MethodNotAllowed, NotFound, TahsilError

JSON = "application/json"


def request_id_of(event: dict[str, Any]) -> str:
    """The request's one id: API Gateway's ``requestContext.requestId``, in the header, the body, the logs and
    the events. An event without one (a direct invoke) gets one, written back so every reader sees the same."""
    context = event.get("requestContext")
    if not isinstance(context, dict):
        context = event["requestContext"] = {}
    if not context.get("requestId"):
        context["requestId"] = str(uuid.uuid4())
    return str(context["requestId"])


def error_body(exc: TahsilError, request_id: str) -> dict[str, Any]:
    return {"success": False, "error": {**exc.body(), "request_id": request_id}}


def retry_advice(event: dict[str, Any]) -> str:
    headers = {k.lower() for k, v in (event.get("headers") or {}).items() if v is not None}
    return "retry with the same Idempotency-Key" if "idempotency-key" in headers else "retry"


def worded(exc: TahsilError, event: dict[str, Any]) -> TahsilError:
    """A ConcurrentUpdate says "retry"; it names the Idempotency-Key only when the client sent one."""
    if isinstance(exc, ConcurrentUpdate) and exc.message.endswith("; retry"):
        worded = ConcurrentUpdate(exc.message.removesuffix("retry") + retry_advice(event), param=exc.param,
                                  **exc.extra)
        return worded
    return exc


def internal_error(event: dict[str, Any]) -> dict[str, Any]:
    return {"code": "INTERNAL_ERROR", "param": None, "request_id": request_id_of(event),
            "message": f"internal error; it is safe to {retry_advice(event)}"}


FIELD_MESSAGES = {
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


def validation_error(errors: list[dict[str, Any]]) -> InvalidRequest:
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
        return InvalidRequest(f"request body {FIELD_MESSAGES.get(kind, first.get('msg', 'is invalid'))}", param="body")
    message = FIELD_MESSAGES.get(kind) or str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    prefix = "query parameter " if where == "query" else ""
    return InvalidRequest(f"{prefix}{field}: {message}", param=field)



def no_route(event: dict[str, Any]) -> TahsilError:
    """A 405 with ``Allow`` when the path has other methods, else a 404."""
    method = str(event.get("httpMethod") or "").upper()
    path = str(event.get("path") or "")
    allow = routes.allowed(path, str(event.get("resource") or "") or None)
    if allow and method not in allow:
        return MethodNotAllowed(f"{method} is not allowed on {path}; it allows {', '.join(allow)}", allow=list(allow),
                                param="method")
    return NotFound(f"no such endpoint: {method} {path}", param="path")
