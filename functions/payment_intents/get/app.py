"""GET /v1/payment-intents/{id}: one payment intent, with its payment's status now."""

from tahsil.api import http
from tahsil.payments import intents
from tahsil.payments.models import PaymentIntent, intent_responses

app = http.resolver()


@app.get("/v1/payment-intents/<id>", summary="Retrieve a payment intent", tags=["Payment intents"],
         responses=intent_responses(PaymentIntent, 400, 401, 404))
def get_intent(id: str):
    return http.respond(app, lambda who, _ctx: intents.get(who, id))


handler = http.entrypoint(app)
