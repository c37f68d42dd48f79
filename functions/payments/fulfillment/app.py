"""POST /v1/payments/{id}/fulfillment: record that the order was fulfilled (once; the same reference again is a no-op)."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.console import trace
from tahsil.console.models import Fulfillment, FulfillmentCreate

app = http.resolver()


@app.post("/v1/payments/<id>/fulfillment", summary="Record fulfillment", tags=["Payments"],
          responses=schemas.responses(Fulfillment, 404, 409))
def fulfill(id: str, body: Annotated[FulfillmentCreate, Body()]):  # noqa: A002
    return http.respond(app, lambda who, ctx: trace.fulfill(who, id, body, ctx))


handler = http.entrypoint(app)
