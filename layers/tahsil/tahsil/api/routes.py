"""Which methods a path has: the ``Allow`` header of a 405, and 404 for a path the API does not have.

The routes are the OpenAPI document's (the layer ships it: ``tahsil/openapi.json``) plus the few
routes it leaves out on purpose (the document itself, the console and checkout pages);
tests/unit/test_http_hardening.py checks that together they are exactly template.yaml's routes.
A path is matched as API Gateway matches resources: a literal segment beats a ``{parameter}``,
so ``/v1/payments/authorize`` is its own resource (POST only), never ``/v1/payments/{id}``.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

UNDOCUMENTED: dict[str, tuple[str, ...]] = {
    "/v1/openapi.json": ("GET",),
    "/dashboard": ("GET",),
    "/dashboard/assets/{name}": ("GET",),
    "/dashboard/session": ("POST",),
    "/favicon.ico": ("GET",),
    "/checkout/{id}": ("GET",),
    "/checkout/assets/{name}": ("GET",),
    "/checkout/authenticate/{id}": ("GET", "POST"),  # the 3-D Secure page and the shopper's return (tahsil.payments.authentication)
    "/connectors/adyen/{merchant_id}/notifications": ("POST",),  # Adyen's, not a merchant's (docs/connectors.md)
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def table() -> dict[str, tuple[str, ...]]:
    """Resource path -> its methods, upper case, sorted."""
    doc = json.loads(resources.files("tahsil").joinpath("openapi.json").read_text())
    found: dict[str, set[str]] = {path: set(methods) for path, methods in UNDOCUMENTED.items()}
    for path, item in doc.get("paths", {}).items():
        found.setdefault(path, set()).update(m.upper() for m in item if m in _METHODS)
    return {path: tuple(sorted(methods)) for path, methods in found.items()}


def _specificity(resource: str) -> tuple[int, ...]:
    return tuple(1 if part.startswith("{") else 0 for part in resource.strip("/").split("/"))


@functools.cache
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    out = [(re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", resource) + "$"), resource) for resource in table()]
    return sorted(out, key=lambda pair: _specificity(pair[1]))


def resource_of(path: str) -> str | None:
    """The resource API Gateway would pick for ``path`` (literal segments first), or None."""
    for pattern, resource in _patterns():
        if pattern.match(path):
            return resource
    return None


def allowed(path: str, resource: str | None = None) -> tuple[str, ...]:
    """The methods of ``resource`` (as API Gateway matched it), else of the resource ``path`` falls in."""
    if resource and resource in table():
        return table()[resource]
    found = resource_of(path)
    return table()[found] if found else ()
