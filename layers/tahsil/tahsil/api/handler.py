"""The Lambda handler of every API function (``entrypoint(app)``), with the same Powertools stack on each
(structured logs with the request id, metrics, tracing). Around the route it:

1. checks ``Tahsil-Version`` (400 naming the header when unknown);
2. authenticates every /v1 route (key, type, IP allowlist, signature, scope: ``tahsil.api.auth``)
   before the body is validated, as Stripe does: a bad key is a 401 whatever the body;
3. applies the per-IP public limit to /public/... and /checkout/... paths, before the route
   runs (or to any route built with ``entrypoint(app, rate_class="public")``);
4. renders the answer for the API version (``tahsil.kernel.versions``) and adds ``X-Request-Id``,
   ``Tahsil-Version`` and the ``X-RateLimit-*`` headers;
5. sends the request log record to SQS once the answer is ready (``tahsil.api.requestlog``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.metrics import MetricUnit

from tahsil.api import auth, idempotency, ratelimit, requestlog
from tahsil.api.body import check as check_body
from tahsil.api.body import check_form
from tahsil.api.envelope import JSON, error_body, internal_error, no_route, request_id_of, worded
from tahsil.api.state import REQUEST, RequestState
from tahsil.api.tracing import drop_unsent_metrics, traced
from tahsil.kernel import clock, versions
from tahsil.kernel.errors import InvalidRequest, RateLimitExceeded, TahsilError
from tahsil.kernel.telemetry import logger, metrics


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
    exc = worded(exc, event)
    headers = {"Content-Type": [JSON]}
    for k, v in (getattr(exc, "headers", None) or {}).items():
        headers[k] = [v]
    return {"statusCode": exc.http_status, "body": json.dumps(error_body(exc, request_id)), "isBase64Encoded": False,
            "multiValueHeaders": headers}


def _before(event: dict[str, Any], state: RequestState, rate_class: str | None, authenticate: bool,
            fallback: bool = False, form: bool = False) -> dict[str, Any] | None:
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
        if form:  # a browser's form post (the 3-D Secure return page): size-checked, parsed by its route
            check_form(event)
        else:
            check_body(event)  # after the key, as Stripe does: a bad key is a 401 whatever the body
        per_ip = rate_class or ("public" if path.startswith(ratelimit.PUBLIC_PREFIXES) else None)
        if per_ip is not None:
            source = ((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp") or "unknown"
            decision = ratelimit.check(f"ip:{source}", per_ip, ratelimit.limit_for(per_ip))
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
        user=state.audit.get("user"),  # a dashboard user (tahsil.identity.cognito), else None
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
               fallback: bool = False, form: bool = False) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler. ``rate_class`` applies a per-source-IP limit of that class to the route (/public/...
    routes get ``"public"`` without asking; ``"notifications"``: processor notifications, their own budget);
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
        token = REQUEST.set(state)
        # The correlation id is kept per thread (Powertools' thread-safe keys), not on the shared logger.
        logger.thread_safe_append_keys(correlation_id=request_id_of(event))
        try:
            idempotency.register_context(context)
            try:
                response = _before(event, state, rate_class, authenticate, fallback, form)
                if response is None:
                    assert app is not None, "only a fallback entrypoint has no resolver"
                    response = app.resolve(event, context)
            except Exception:  # noqa: BLE001 - e.g. the key lookup failed: a 500 envelope, never a crash
                logger.exception("unhandled error before the route")
                response = {"statusCode": 500, "isBase64Encoded": False, "multiValueHeaders": {"Content-Type": [JSON]},
                            "body": json.dumps({"success": False, "error": internal_error(event)})}
            version, error_code = _after(response, event, state)
        finally:
            REQUEST.reset(token)
            logger.thread_safe_remove_keys(["correlation_id"])
        _log(event, response, state, version, error_code)
        return response

    return handler
