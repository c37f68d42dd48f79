"""GET /public/payment-intents/{id}: what a page needs to show the amount and the outcome; no key, no client secret,
no customer data, no return URLs (docs/decisions/security.md, "Public endpoints")."""

from tahsil.api import http
from tahsil.kernel import versions
from tahsil.payments import intents
from tahsil.payments.models import PublicPaymentIntent, intent_responses

app = http.resolver()


@app.get("/public/payment-intents/<id>", summary="Retrieve a payment intent (public)", tags=["Checkout (public)"],
         security=[{}], responses=intent_responses(PublicPaymentIntent, 400, 404))
def get_public_intent(id: str):
    return http.respond_as(app, intents.public_get(id), headers=http.NO_STORE)


# Seed 002 answered the public endpoints' errors as objects: rendered so for older versions.
handler = versions.public_handler(http.entrypoint(app))
