"""POST /v1/payments/{id}/void: cancel an authorization and release the hold."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.payments import modifications
from tahsil.payments.models import Payment, VoidRequest

app = http.resolver()


@app.post("/v1/payments/<id>/void", summary="Void an authorization", tags=["Payments"],
          responses=schemas.processor_responses(Payment, 404, 409, 410))
def void(id: str, body: Annotated[VoidRequest, Body()]):
    return http.respond(app, lambda who, ctx: modifications.void(who, id, body, ctx))


handler = http.entrypoint(app)
