"""POST /v1/test-helpers/payment-intents/{id}/advance: test mode time travel for one payment intent."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.payments import intents
from tahsil.payments.models import Advance, PaymentIntent

app = http.resolver()


@app.post("/v1/test-helpers/payment-intents/<id>/advance", summary="Test mode: advance a payment intent's clock",
          tags=["Test helpers"], responses=schemas.responses(PaymentIntent, 404))
def advance(id: str, body: Annotated[Advance, Body()]):  # noqa: A002
    return http.respond(app, lambda who, _ctx: intents.advance(who, id, body.seconds))


handler = http.entrypoint(app)
