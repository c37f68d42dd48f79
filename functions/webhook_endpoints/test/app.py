"""POST /v1/webhook-endpoints/{id}/test: send a test event through the real pipeline."""

from tahsil.api import http, schemas
from tahsil.webhooks import events
from tahsil.webhooks.models import Event

app = http.resolver()


@app.post("/v1/webhook-endpoints/<id>/test", summary="Send a test event", tags=["Webhooks"],
          responses=schemas.responses(Event, 404, status=202))
def send_test(id: str):  # noqa: A002
    return http.respond(app, lambda who, ctx: events.send_test(who, id, ctx), status=202)


handler = http.entrypoint(app)
