"""POST /v1/payment-intents/{id}/cancel: stop an intent that has not been paid (400 once it has)."""

from tahsil.api import http
from tahsil.payments import intents
from tahsil.payments.models import PaymentIntent, intent_responses

app = http.resolver()


@app.post("/v1/payment-intents/<id>/cancel", summary="Cancel a payment intent", tags=["Payment intents"],
          responses=intent_responses(PaymentIntent, 400, 401, 404, 409, 410, message=True))
def cancel_intent(id: str):
    return http.respond(app, lambda who, ctx: intents.cancel(who, id, ctx), message="payment intent canceled")


handler = http.entrypoint(app)
