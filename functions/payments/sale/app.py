"""POST /v1/payments/sale: authorize and capture in one step."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.payments import authentication, lifecycle
from tahsil.payments.models import Payment, PaymentCreate

app = http.resolver()


@app.post("/v1/payments/sale", summary="Sale: authorize and capture", tags=["Payments"],
          responses=schemas.processor_responses(Payment, 402, 409))
def sale(body: Annotated[PaymentCreate, Body()]):
    state = http.current()
    authentication.remember_base(app.current_event)
    return lifecycle.create_counted(state.principal if state else None, body, capture=True,
                                     respond=lambda action: http.respond(app, action))


handler = http.entrypoint(app)
