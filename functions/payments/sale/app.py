"""POST /v1/payments/sale: authorize and capture in one step."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.payments import lifecycle
from tahsil.payments.models import Payment, PaymentCreate

app = http.resolver()


@app.post("/v1/payments/sale", summary="Sale: authorize and capture", tags=["Payments"],
          responses=schemas.processor_responses(Payment, 402, 409))
def sale(body: Annotated[PaymentCreate, Body()]):
    return lifecycle.create_counted(http.principal(), body, capture=True, base_url=http.public_base_url(app),
                                     respond=lambda action: http.respond(app, action))


handler = http.entrypoint(app)
