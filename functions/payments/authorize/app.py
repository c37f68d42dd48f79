"""POST /v1/payments/authorize: hold funds on a card for up to 7 days."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.payments import lifecycle
from tahsil.payments.models import Payment, PaymentCreate

app = http.resolver()


@app.post("/v1/payments/authorize", summary="Authorize a payment", tags=["Payments"],
          responses=schemas.processor_responses(Payment, 402, 409))
def authorize(body: Annotated[PaymentCreate, Body()]):
    return lifecycle.create_counted(http.principal(), body, capture=False, base_url=http.public_base_url(app),
                                     respond=lambda action: http.respond(app, action))


handler = http.entrypoint(app)
