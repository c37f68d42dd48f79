"""POST /v1/payments/{id}/capture: capture all or part of an authorization."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.payments import modifications
from tahsil.payments.models import CaptureRequest, Payment

app = http.resolver()
FULL = CaptureRequest()  # no body: capture everything that is authorized


@app.post("/v1/payments/<id>/capture", summary="Capture an authorized payment", tags=["Payments"],
          responses=schemas.processor_responses(Payment, 404, 409, 410))
def capture(id: str, body: Annotated[CaptureRequest, Body()] = FULL):
    return http.respond(app, lambda who, ctx: modifications.capture(who, id, body, ctx))


handler = http.entrypoint(app)
