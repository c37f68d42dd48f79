"""GET /dashboard: the developer console for merchant staff; GET /dashboard/assets/{name}: its ES modules,
styles and icon; GET /favicon.ico: the icon, for browsers and tools that ask the site root for it.

The page is a static shell: it signs in through POST /dashboard/session (Cognito), then calls the
/v1 API with the user's ID token (``Authorization: Bearer``) and ``Tahsil-Mode``. No inline script
or style, so the CSP is as strict as the checkout page's; everything comes from this origin.

The script is native ES modules (static/*.js, no bundler) plus ``constants.js``, generated from the
backend's definitions (``tahsil.console.constants``). Every asset URL carries the release (a hash of
all the assets): the page's links and each module's ``from "./x.js"`` imports, rewritten here, so a
browser never mixes modules of two releases and may cache each URL for a day.
"""

import functools
import hashlib
import re
from pathlib import Path

from tahsil.api import http, static
from tahsil.console import constants
from tahsil.payments import checkout

app = http.resolver()

STATIC = Path(__file__).resolve().parent / "static"
IMPORT = re.compile(r'(^import\b[^"]*\bfrom\s*")(\./[a-z0-9-]+\.js)(")', re.M)  # a static import of a sibling module


@functools.cache
def release() -> tuple[str, dict[str, str]]:
    """The release tag and name -> served text of every asset (index.html is the page, not an asset)."""
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(STATIC.iterdir()) if p.suffix in static.TYPES}
    files[constants.MODULE] = constants.module()
    tag = hashlib.sha256("".join(f"{name}\0{text}\0" for name, text in sorted(files.items())).encode()).hexdigest()[:12]
    served = {name: IMPORT.sub(rf"\g<1>\g<2>?v={tag}\g<3>", text) if name.endswith(".js") else text
              for name, text in files.items()}
    return tag, served


def assets() -> dict[str, str]:
    return release()[1]


@functools.cache
def page() -> str:
    """The shell, with asset URLs relative to /dashboard (so a stage prefix works) and versioned by the release.
    Every module is preloaded, so the browser fetches them in parallel instead of import by import."""
    tag, served = release()
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    preload = "\n".join(f'<link rel="modulepreload" href="dashboard/assets/{name}?v={tag}">'
                        for name in sorted(served) if name.endswith(".js") and name != "dashboard.js")
    html = html.replace("{{modulepreload}}", preload)
    for name in served:
        html = html.replace("{{" + name + "}}", f"dashboard/assets/{name}?v={tag}")
    return html


@app.get("/dashboard", include_in_schema=False)
def dashboard_page():
    return static.page(200, page(), headers=checkout.PAGE_HEADERS)


@app.get("/dashboard/assets/<name>", include_in_schema=False)
def dashboard_asset(name: str):
    return static.asset(assets(), name)


@app.get("/favicon.ico", include_in_schema=False)
def favicon():
    # The SVG icon: the API has no binary media types, and browsers read an icon by its Content-Type.
    return static.asset(assets(), "icon.svg")


handler = http.entrypoint(app, rate_class="public")
