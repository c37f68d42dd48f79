"""GET /v1/events: events newest first, filtered by type, delivery status, object and time."""

from typing import Annotated, Literal

from tahsil.api import http, schemas
from tahsil.api.params import Query
from tahsil.kernel.models import IsoDateTime
from tahsil.webhooks import events
from tahsil.webhooks.models import EventList

app = http.resolver()


@app.get("/v1/events", summary="List events", tags=["Events"],
         responses=schemas.responses(EventList))
def list_events(
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,  # noqa: A002
    delivery_status: Annotated[Literal["pending", "delivered", "failed", "no_endpoints"] | None, Query()] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    created_gte: Annotated[IsoDateTime | None, Query()] = None,
    created_lte: Annotated[IsoDateTime | None, Query()] = None,
):
    return http.respond(app, lambda who, _ctx: events.list_events(
        who, limit=limit, starting_after=starting_after, type_=type, delivery_status=delivery_status,
        object_id=object_id, created_gte=created_gte, created_lte=created_lte,
    ))


handler = http.entrypoint(app)
