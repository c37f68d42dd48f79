"""POST /v1/payments/{id}/refund: return captured money, in full or in parts."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.payments import modifications
from tahsil.payments.models import Payment, RefundRequest

app = http.resolver()


@app.post("/v1/payments/<id>/refund", summary="Refund a captured payment", tags=["Payments"],
          responses=schemas.processor_responses(Payment, 404, 409))
def refund(id: str, body: Annotated[RefundRequest, Body()]):
    return http.respond(app, lambda who, ctx: modifications.refund(who, id, body, ctx))


handler = http.entrypoint(app)
