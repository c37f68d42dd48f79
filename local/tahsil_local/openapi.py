"""Generate the OpenAPI document from the code: every API function's routes and models.

Each function in template.yaml owns its routes; this merges them into one Powertools
resolver and asks it for the schema. The result is written once, to ``docs/openapi.json``;
``layers/tahsil/tahsil/openapi.json``, which the layer ships and ``GET /v1/openapi.json``
serves, is a symlink to it. A test fails when it drifts from the code.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

from tahsil_local import template

OUTPUTS = (template.ROOT / "docs" / "openapi.json",)
# The layer's copy (served by GET /v1/openapi.json) is a symlink to the one above: one file in git,
# which `sam build` copies into the layer as a regular file.
LAYER_COPY = template.ROOT / "layers" / "tahsil" / "tahsil" / "openapi.json"

DESCRIPTION = """Tahsil is an open-source, serverless payment gateway.

Every response is JSON in one envelope: `{"success": true, "data": ...}` or
`{"success": false, "error": {"code", "message", "param", "request_id"}}`, and carries
`X-Request-Id`. Amounts are integers in the currency's minor unit. Send
`Idempotency-Key` on any POST to retry it safely for 24 hours."""


def _load(fn: template.Function) -> Any:
    module_file, _ = fn.handler.rsplit(".", 1)
    spec = importlib.util.spec_from_file_location(f"openapi_{fn.logical_id}", fn.code_dir / f"{module_file}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate() -> str:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    from tahsil import __version__

    for name in ("PAYMENTS_TABLE", "IDEMPOTENCY_TABLE", "CREDENTIALS_TABLE", "CARD_KEY_ID", "PEPPER_SECRET_ID"):
        os.environ.setdefault(name, "unused")
    combined = APIGatewayRestResolver(enable_validation=True)
    for fn in template.functions(template.load()):
        app = getattr(_load(fn), "app", None)
        if app is not None and fn.routes:
            combined._static_routes.extend(app._static_routes)
            combined._dynamic_routes.extend(app._dynamic_routes)
    schema = combined.get_openapi_schema(
        title="Tahsil API",
        version=__version__,
        description=DESCRIPTION,
        security_schemes={"ApiKey": APIKey(name="X-API-Key", **{"in": APIKeyIn.header}),
                          "ClientSecret": APIKey(name="X-Client-Secret", **{"in": APIKeyIn.header},
                                                 description="A payment intent's client_secret (public checkout endpoints)")},
        security=[{"ApiKey": []}],
    )
    data = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(finish(data), indent=2, sort_keys=True) + "\n"


# What every route can answer before its own code runs (tahsil.api.http.entrypoint, tahsil.api.body).
STANDARD: dict[str, str] = {
    "400": "Invalid request: the error names the field (`param`) and the reason; also an unknown Tahsil-Version",
    "401": "Missing, unknown, revoked or expired API key; a missing, stale or wrong request signature",
    "403": "The key lacks the route's scope, is publishable, or the request comes from outside its IP allowlist",
    "413": "The request body is larger than the limit (docs/api.md, Request bodies)",
    "415": "A body was sent without `Content-Type: application/json` (charset, if any, utf-8)",
    "429": "Rate limit exceeded: see Retry-After and X-RateLimit-Limit / -Remaining / -Reset",
}
REQUEST_ID = {"description": "The request's id, the same as the body's `request_id` (errors)",
              "schema": {"type": "string"}}

# OpenAPI links: where an answer's id leads (stateful clients and fuzzers follow them).
LINKS: dict[tuple[str, str], dict[str, tuple[str, str]]] = {
    ("post", "/v1/payments/authorize"): {
        "CapturePayment": ("post", "/v1/payments/{id}/capture"), "VoidPayment": ("post", "/v1/payments/{id}/void"),
        "RefundPayment": ("post", "/v1/payments/{id}/refund"), "GetPayment": ("get", "/v1/payments/{id}")},
    ("post", "/v1/payments/sale"): {
        "RefundPayment": ("post", "/v1/payments/{id}/refund"), "GetPayment": ("get", "/v1/payments/{id}")},
    ("post", "/v1/payment-intents"): {
        "ConfirmPaymentIntent": ("post", "/public/payment-intents/{id}/confirm"),
        "CancelPaymentIntent": ("post", "/v1/payment-intents/{id}/cancel"),
        "GetPaymentIntent": ("get", "/v1/payment-intents/{id}")},
    ("post", "/v1/webhook-endpoints"): {
        "GetWebhookEndpoint": ("get", "/v1/webhook-endpoints/{id}"),
        "UpdateWebhookEndpoint": ("patch", "/v1/webhook-endpoints/{id}"),
        "RotateWebhookEndpointSecret": ("post", "/v1/webhook-endpoints/{id}/rotate-secret")},
}
# A link's extra parameters, beyond the id: the intent's client secret for the public confirm.
LINK_EXTRAS: dict[str, dict[str, str]] = {
    "ConfirmPaymentIntent": {"header.X-Client-Secret": "$response.body#/data/client_secret"},
}


def finish(data: dict[str, Any]) -> dict[str, Any]:
    """Say what the gateway answers: drop Powertools' 422 (validation errors are 400 here), add the answers
    every route can give before its code runs, the X-Request-Id header, and the links."""
    schemas = data.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for path, item in data["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            responses.pop("422", None)
            codes = ["400", "429"]
            if path.startswith("/v1/"):
                codes += ["401", "403"]
            if method in ("post", "put", "patch", "delete"):  # any body sent is checked (tahsil.api.body)
                codes += ["413", "415"]
            for code in codes:
                responses.setdefault(code, {"description": STANDARD[code], "content": error})
            for answer in responses.values():
                answer.setdefault("headers", {})["X-Request-Id"] = REQUEST_ID
    ids = {(method, path): op["operationId"] for path, item in data["paths"].items() for method, op in item.items()}
    for (method, path), links in LINKS.items():
        op = data["paths"][path][method]
        success = next(code for code in sorted(op["responses"]) if code.startswith("2"))
        op["responses"][success]["links"] = {
            name: {"operationId": ids[target], "parameters": {"path.id": "$response.body#/data/id",
                                                              **LINK_EXTRAS.get(name, {})}}
            for name, target in links.items()}
    return data
