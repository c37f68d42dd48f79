"""GET /dashboard: the developer console for merchant staff; GET /dashboard/assets/{name}: its script and styles;
GET /favicon.ico: the icon, for browsers and tools that ask the site root for it.

The page is a static shell: it signs in through POST /dashboard/session (Cognito), then calls the
/v1 API with the user's ID token (``Authorization: Bearer``) and ``Tahsil-Mode``. No inline script
or style, so the CSP is as strict as the checkout page's; everything comes from this origin.
"""

import functools
import hashlib
from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from tahsil.api import http
from tahsil.kernel.errors import NotFound
from tahsil.payments import checkout

app = http.resolver()

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8",
         "icon.svg": "image/svg+xml"}


@functools.cache
def asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@functools.cache
def page() -> str:
    """The shell, with asset URLs relative to /dashboard (so a stage prefix works) and versioned by content."""
    html = asset("index.html")
    for name in TYPES:
        html = html.replace("{{" + name + "}}", f"dashboard/assets/{name}?v={hashlib.sha256(asset(name).encode()).hexdigest()[:12]}")
    return html


@app.get("/dashboard", include_in_schema=False)
def dashboard_page():
    return Response(200, "text/html; charset=utf-8", page(), headers=dict(checkout.PAGE_HEADERS))


@app.get("/dashboard/assets/<name>", include_in_schema=False)
def dashboard_asset(name: str):
    if name not in TYPES:
        raise NotFound("no such asset", param="name")
    return Response(200, TYPES[name], asset(name),
                    headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


@app.get("/favicon.ico", include_in_schema=False)
def favicon():
    # The SVG icon: the API has no binary media types, and browsers read an icon by its Content-Type.
    return Response(200, TYPES["icon.svg"], asset("icon.svg"),
                    headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


handler = http.entrypoint(app, rate_class="public")
