"""POST /v1/payments/sale: authorize and capture in one step."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.kernel.config import settings
from tahsil.payments import authentication, intents, lifecycle
from tahsil.payments.models import Payment, PaymentCreate

app = http.resolver()


@app.post("/v1/payments/sale", summary="Sale: authorize and capture", tags=["Payments"],
          responses=schemas.processor_responses(Payment, 402, 409))
def sale(body: Annotated[PaymentCreate, Body()]):
    state = http.current()
    event = app.current_event  # where the 3-D Secure page is, for next_action (as checkout_url is made)
    authentication.BASE_URL.set(intents.public_base_url(settings().public_base_url, stage=event.request_context.stage,
                                                        domain_name=event.request_context.domain_name or event.headers.get("Host")))
    return lifecycle.create_counted(state.principal if state else None, body, capture=True,
                                     respond=lambda action: http.respond(app, action))


handler = http.entrypoint(app)
