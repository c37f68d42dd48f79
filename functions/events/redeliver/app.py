"""POST /v1/events/{id}/redeliver: send an event again, to every endpoint or to one."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.webhooks import events
from tahsil.webhooks.models import RedeliverRequest, Redelivery

app = http.resolver()
ALL = RedeliverRequest()


@app.post("/v1/events/<id>/redeliver", summary="Redeliver an event", tags=["Events"],
          responses=schemas.responses(Redelivery, 404, status=202))
def redeliver(id: str, body: Annotated[RedeliverRequest, Body()] = ALL):  # noqa: A002
    return http.respond(app, lambda who, _ctx: events.redeliver(who, id, body.endpoint_id), status=202)


handler = http.entrypoint(app)
