"""The HTTP contract, shared by every API function. Handlers call three names from here:

- ``resolver()``: a Powertools REST resolver that validates requests against the pydantic
  models and maps every error to one JSON envelope, once (``tahsil.api.resolver``,
  ``tahsil.api.envelope``).
- ``respond()``: run one domain call under the rate limit and Idempotency-Key semantics, and
  wrap the result in ``{"success": true, "data": ...}`` (this module).
- ``entrypoint()``: the Lambda handler around the resolver: API version, authentication, the
  public per-IP limit, the answer's headers and its request log (``tahsil.api.handler``).

Rate limits and the hot path: the per-merchant counters need the merchant, known after the
key lookup. ``respond`` starts them (``tahsil.api.ratelimit.start``, worker threads) and, for an
idempotent POST, takes the idempotency lock meanwhile; the domain action waits for the
counters' verdict, so a refused request never runs it, and the sequential depth of an
authorize stays at four DynamoDB round trips (key, lock || counters, transaction, completion).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from tahsil.api import auth, idempotency, ratelimit
from tahsil.api.envelope import JSON, error_body, no_route, request_id_of
from tahsil.api.handler import BASE_PATHS, canonical, entrypoint
from tahsil.api.resolver import Resolver, resolver
from tahsil.api.state import RequestState, current
from tahsil.kernel.config import settings
from tahsil.kernel.errors import InvalidRequest, PaymentProcessing, RateLimitExceeded, TahsilError
from tahsil.kernel.events import Answer, RequestContext
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import logger, metrics

__all__ = ["BASE_PATHS", "JSON", "NO_STORE", "Action", "RequestState", "Resolver", "canonical", "current", "entrypoint",
           "no_route", "principal", "public_base_url", "request_id_of", "requested_version", "resolver", "respond",
           "respond_as"]

MAX_IDEMPOTENCY_KEY = 255

Action = Callable[[Principal, RequestContext], Any]
NO_STORE = {"Cache-Control": "no-store"}  # answers that carry a client secret or a shopper's view


def principal() -> Principal | None:
    """The principal ``entrypoint`` authenticated for this request (None before, or on a public route)."""
    state = current()
    return state.principal if state is not None else None


def requested_version() -> str | None:
    """The API version this request asked for in ``Tahsil-Version``, when it sent one."""
    state = current()
    return state.version if state is not None else None


def public_base_url(app: APIGatewayRestResolver) -> str:
    """Where this deployment's public pages (hosted checkout, the 3-D Secure page) live, for this request.

    PUBLIC_BASE_URL when set (the local runtime sets it; set the PublicBaseUrl parameter for a custom
    domain). Otherwise the API's own address from the request: API Gateway's default endpoint carries the
    stage in the path, ``https://{api}.execute-api.{region}.amazonaws.com/{stage}``.
    """
    configured = settings().public_base_url
    if configured:
        return configured.rstrip("/")
    event = app.current_event
    domain_name = event.request_context.domain_name or event.headers.get("Host")
    if not domain_name:
        raise RuntimeError("PUBLIC_BASE_URL is not set and the request names no host")
    stage = event.request_context.stage
    base = f"https://{domain_name}"
    if domain_name.endswith(".amazonaws.com") and stage:
        base += f"/{stage}"
    return base


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
        self.pending = {"status": error.http_status, "body": error_body(error, self.request_id)}
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
        result = {"status": exc.http_status, "body": error_body(exc, ctx.request_id)}
    if bound is not None and bound.completion.done and bound.pending is not None:
        return bound.pending
    return result




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


def respond_as(app: APIGatewayRestResolver, owner_and_action: tuple[Principal, Action], **options: Any) -> Response:
    """``respond`` on behalf of an object's owner, for public routes: the domain returns who owns the object
    and what to do (e.g. ``tahsil.payments.intents.public_get``)."""
    owner, action = owner_and_action
    return respond(app, action, principal=owner, **options)


def respond(app: APIGatewayRestResolver, action: Action, *, status: int = 200,
            principal: Principal | None = None, idempotency_scope: str | None = None,
            rate_class: str | None = None, message: str | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """Run ``action`` for the authenticated principal under the rate limit and Idempotency-Key.

    The principal is the one ``entrypoint`` authenticated, or the caller's (public endpoints
    know it from their object). ``idempotency_scope`` narrows where an Idempotency-Key lives:
    public endpoints pass their object's id, so a key sent from a browser can never collide
    with one of the merchant's own. ``rate_class`` overrides the class the path implies
    (``tahsil.api.ratelimit.classify``); /public/... paths are limited per IP by ``entrypoint``.
    ``message`` adds seed 002's human-readable ``"message"`` beside ``data`` on success; ``headers`` are added
    to a success (200/201/202), e.g. ``NO_STORE``.
    """
    event = app.current_event
    state = current()
    if principal is None:
        principal = state.principal if state is not None and state.principal is not None else \
            auth.authenticate_event(event.raw_event, audit=state.audit if state is not None else None)
    if state is not None:
        state.principal = principal
    key = event.headers.get("Idempotency-Key")  # Powertools' headers are case-insensitive
    ctx = RequestContext(request_id=request_id_of(app.current_event.raw_event), idempotency_key=key)
    headers = dict(headers or {})
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


