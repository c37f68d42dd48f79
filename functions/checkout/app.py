"""GET /checkout/{id}: the hosted checkout page; GET /checkout/assets/{name}: its script and styles;
GET/POST /checkout/authenticate/{id}: the 3-D Secure test page and the shopper's return.

The page is HTML rendered from the intent (``tahsil.payments.checkout``) for whoever holds the client
secret in its URL; script and styles are files served from here, so the CSP needs no inline code.
"""

import functools
import hashlib
from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from tahsil.api import http, static
from tahsil.payments import challenge, checkout, intents

app = http.resolver()

STATIC = Path(__file__).resolve().parent / "static"
NAMES = ("checkout.js", "checkout.css")


@functools.cache
def served() -> dict[str, str]:
    return {name: (STATIC / name).read_text(encoding="utf-8") for name in NAMES}


@functools.cache
def asset_urls() -> dict[str, str]:
    """Relative to /checkout/{id} (so they work under a stage prefix too), versioned by content."""
    return {name: f"assets/{name}?v={hashlib.sha256(text.encode()).hexdigest()[:12]}" for name, text in served().items()}


@app.get("/checkout/<id>", include_in_schema=False)
def checkout_page(id: str):
    return static.page(*checkout.render(intents.checkout_state(id, app.current_event.get_query_string_value("client_secret")),
                                        asset_urls()), headers=checkout.PAGE_HEADERS)


@app.get("/checkout/assets/<name>", include_in_schema=False)
def checkout_asset(name: str):
    return static.asset(served(), name)


@app.get("/checkout/authenticate/<id>", include_in_schema=False)
def authentication_page(id: str):
    """Tahsil's 3-D Secure test page: a plain form (no script) with Complete and Fail."""
    return static.page(*challenge.show(id, app.current_event.get_query_string_value("token"),
                                       app.current_event.get_query_string_value("client_secret")))


@app.post("/checkout/authenticate/<id>", include_in_schema=False)
def authentication_return(id: str):
    """The shopper's answer: committed once (tahsil.payments.authentication), then 303 to the return_url."""
    return Response(303, "text/plain; charset=utf-8", "",
                    headers={"Location": challenge.answer(id, app.current_event.decoded_body),
                             "Cache-Control": "no-store"})


handler = http.entrypoint(app, form=True)  # the authentication page posts an HTML form
