"""The Powertools REST resolver every API function builds its routes on (``resolver()``): requests are
validated against the pydantic models, and every error, the domain's or Powertools', becomes one JSON
envelope (``tahsil.api.envelope``), once."""

from __future__ import annotations

import contextvars
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError

from tahsil.api.body import unsupported as unsupported_media_type
from tahsil.api.envelope import JSON, error_body, internal_error, no_route, request_id_of, validation_error, worded
from tahsil.kernel.errors import InvalidRequest, TahsilError
from tahsil.kernel.telemetry import logger

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
        exc = worded(exc, app.current_event.raw_event)
        return Response(exc.http_status, JSON, json.dumps(error_body(exc, request_id_of(app.current_event.raw_event))),
                        headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return _domain(validation_error(list(exc.errors())))

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
        return Response(500, JSON, json.dumps({"success": False, "error": internal_error(app.current_event.raw_event)}))

    return app
