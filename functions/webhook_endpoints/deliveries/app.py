"""GET /v1/webhook-endpoints/{id}/deliveries: one endpoint's delivery log, newest first (attempts: /v1/events/{id}/deliveries)."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Query
from tahsil.webhooks import deliveries
from tahsil.webhooks.models import EndpointDeliveryList

app = http.resolver()


@app.get("/v1/webhook-endpoints/<id>/deliveries", summary="List an endpoint's deliveries", tags=["Webhooks"],
         responses=schemas.responses(EndpointDeliveryList, 404))
def list_deliveries(
    id: str,  # noqa: A002
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(max_length=64, description="event_id of the last delivery seen")] = None,
):
    return http.respond(app, lambda who, _ctx: deliveries.endpoint_deliveries(who, id, limit=limit,
                                                                              starting_after=starting_after))


handler = http.entrypoint(app)
