"""POST /v1/webhook-endpoints/{id}/recover: resend what failed to this endpoint since a time."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.webhooks import events
from tahsil.webhooks.models import RecoverRequest, Recovery

app = http.resolver()


@app.post("/v1/webhook-endpoints/<id>/recover", summary="Resend failed deliveries", tags=["Webhooks"],
          responses=schemas.responses(Recovery, 404, status=202))
def recover(id: str, body: Annotated[RecoverRequest, Body()]):  # noqa: A002
    return http.respond(app, lambda who, _ctx: events.recover(who, id, body.since), status=202)


handler = http.entrypoint(app)
