"""GET /v1/events/{id}/deliveries: every endpoint's delivery of this event, attempt by attempt."""

from tahsil.api import http, schemas
from tahsil.webhooks import events
from tahsil.webhooks.models import EventDeliveries

app = http.resolver()


@app.get("/v1/events/<id>/deliveries", summary="An event's deliveries and attempts", tags=["Events"],
         responses=schemas.responses(EventDeliveries, 404))
def deliveries(id: str):  # noqa: A002
    return http.respond(app, lambda who, _ctx: events.deliveries(who, id))


handler = http.entrypoint(app)
