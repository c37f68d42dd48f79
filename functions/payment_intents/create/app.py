"""POST /v1/payment-intents: an amount to collect on the hosted checkout page (201, with checkout_url)."""

from typing import Annotated

from tahsil.api import http
from tahsil.api.params import Body
from tahsil.payments import intents
from tahsil.payments.models import CreatedPaymentIntent, IntentCreate, intent_responses

app = http.resolver()


@app.post("/v1/payment-intents", summary="Create a payment intent", tags=["Payment intents"],
          responses=intent_responses(CreatedPaymentIntent, 400, 401, 409, status=201))
def create_intent(body: Annotated[IntentCreate, Body()]):
    return http.respond(app, lambda who, ctx: intents.create(who, body, ctx, base_url=http.public_base_url(app)),
                        status=201)


handler = http.entrypoint(app)
