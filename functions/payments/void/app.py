"""POST /v1/payments/{id}/void: cancel an authorization and release the hold."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from tahsil.api import http, schemas
from tahsil.payments import payments
from tahsil.payments.models import Payment, VoidRequest

app = http.resolver()


@app.post("/v1/payments/<id>/void", summary="Void an authorization", tags=["Payments"],
          responses=schemas.responses(Payment, 404, 409, 410))
def void(id: str, body: Annotated[VoidRequest, Body()]):
    return http.respond(app, lambda who, ctx: payments.void(who, id, body, ctx))


handler = http.entrypoint(app)
