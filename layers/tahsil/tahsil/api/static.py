"""Pages and files a function serves itself (the hosted checkout, the dashboard): one way to answer them.

The API has no static hosting in front of it, so the checkout and dashboard functions answer their HTML
and their script, style and icon files. ``asset`` answers one file of a release (name -> text) with its
type and a day of caching (each URL carries the release, so a new release is a new URL), or a 404 naming
the parameter; ``page`` answers HTML with the page's own headers (its CSP).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath

from aws_lambda_powertools.event_handler import Response

from tahsil.kernel.errors import NotFound

TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
HTML = "text/html; charset=utf-8"


def asset(served: Mapping[str, str], name: str) -> Response:
    """The file ``name`` of ``served`` (its release: name -> text), or 404 when the release has no such file."""
    if name not in served or PurePath(name).suffix not in TYPES:
        raise NotFound("no such asset", param="name")
    return Response(200, TYPES[PurePath(name).suffix], served[name], headers=dict(ASSET_HEADERS))


def page(status: int, html: str, headers: Mapping[str, str]) -> Response:
    """An HTML page with its own headers (Content-Security-Policy and the like)."""
    return Response(status, HTML, html, headers=dict(headers))
