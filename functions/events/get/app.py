"""GET /v1/events/{id}: one event, as delivered, with its delivery status."""

from tahsil.api import http, schemas
from tahsil.webhooks import events
from tahsil.webhooks.models import Event

app = http.resolver()


@app.get("/v1/events/<id>", summary="Retrieve an event", tags=["Events"],
         responses=schemas.responses(Event, 404))
def get_event(id: str):  # noqa: A002
    return http.respond(app, lambda who, _ctx: events.get_event(who, id))


handler = http.entrypoint(app)
