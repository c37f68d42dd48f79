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
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
