"""POST /public/payment-intents/{id}/confirm: pay an intent with a card, from the customer's browser.

The client secret comes in X-Client-Secret (or ?client_secret=); the merchant and mode are
the intent's own. An Idempotency-Key sent here is scoped to the intent.
"""

from typing import Annotated

from tahsil.api import http
from tahsil.api.params import Body, Query
from tahsil.kernel import versions
from tahsil.payments import intents
from tahsil.payments.models import ConfirmedPaymentIntent, IntentConfirm, intent_responses

app = http.resolver()


@app.post("/public/payment-intents/<id>/confirm", summary="Confirm a payment intent with a card (public)",
          tags=["Checkout (public)"], security=[{"ClientSecret": []}],
          responses=intent_responses(ConfirmedPaymentIntent, 400, 401, 402, 404, 409, 410))
def confirm_intent(
    id: str,
    body: Annotated[IntentConfirm, Body()],
    client_secret: Annotated[str | None, Query(description="Alternative to the X-Client-Secret header")] = None,
):
    return http.respond(app, lambda who, ctx: intents.confirm(
        who, id, intents.presented_secret(app.current_event.headers.get("X-Client-Secret"), client_secret), body, ctx,
        base_url=http.public_base_url(app),
    ), principal=intents.public_principal(id), idempotency_scope=id, headers=http.NO_STORE)


# Seed 002 answered the public endpoints' errors as objects: rendered so for older versions.
handler = versions.public_handler(http.entrypoint(app))
