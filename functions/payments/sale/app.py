"""POST /v1/payments/sale: authorize and capture in one step."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from tahsil.api import http, schemas
from tahsil.payments import processing
from tahsil.payments.models import Payment, PaymentCreate

app = http.resolver()


@app.post("/v1/payments/sale", summary="Sale: authorize and capture", tags=["Payments"],
          responses=schemas.processor_responses(Payment, 402, 409))
def sale(body: Annotated[PaymentCreate, Body()]):
    return http.respond(app, lambda who, ctx: processing.create(who, body, capture=True, ctx=ctx))


handler = http.entrypoint(app)
