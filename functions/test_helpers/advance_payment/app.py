"""POST /v1/test-helpers/payments/{id}/advance: test mode time travel for one payment."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.payments import expiry
from tahsil.payments.models import Advance, Payment

app = http.resolver()


@app.post("/v1/test-helpers/payments/<id>/advance", summary="Test mode: advance a payment's clock", tags=["Test helpers"],
          responses=schemas.responses(Payment, 404))
def advance(id: str, body: Annotated[Advance, Body()]):  # noqa: A002
    return http.respond(app, lambda who, _ctx: expiry.advance(who, id, body.seconds))


handler = http.entrypoint(app)
