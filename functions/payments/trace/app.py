"""GET /v1/payments/{id}/trace: the payment's hand-off as one timeline (requests, events, webhook attempts, fulfillment)."""

from tahsil.api import http, schemas
from tahsil.console import trace
from tahsil.console.models import Trace

app = http.resolver()


@app.get("/v1/payments/<id>/trace", summary="Trace a payment's hand-off", tags=["Payments"],
         responses=schemas.responses(Trace, 404))
def get_trace(id: str):  # noqa: A002
    return http.respond(app, lambda who, _ctx: trace.trace(who, id))


handler = http.entrypoint(app)
