"""GET /public/payment-intents/{id}: what a page needs to show the amount and the outcome; no key, no client secret,
no customer data, no return URLs (docs/decisions/security.md, "Public endpoints")."""

from tahsil.api import http
from tahsil.kernel import versions
from tahsil.payments import intents
from tahsil.payments.models import PublicPaymentIntent, intent_responses, public_read

app = http.resolver()


@app.get("/public/payment-intents/<id>", summary="Retrieve a payment intent (public)", tags=["Checkout (public)"],
         security=[{}], responses=intent_responses(PublicPaymentIntent, 400, 404))
def get_public_intent(id: str):
    item = intents.load_public(id)
    answer = http.respond(app, lambda _who, _ctx: public_read(intents.public_view(item)), principal=intents.principal_of(item))
    answer.headers["Cache-Control"] = "no-store"
    return answer


# Seed 002 answered the public endpoints' errors as objects: rendered so for older versions.
handler = versions.public_handler(http.entrypoint(app))
