"""GET /v1/overview: requests, success rate, latency (mean, p95), status codes, signatures and webhook deliveries
over a window, computed from the request logs and delivery records."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Query
from tahsil.console import overview
from tahsil.console.models import Overview
from tahsil.kernel.models import IsoDateTime

app = http.resolver()


@app.get("/v1/overview", summary="Usage overview", tags=["Console"], responses=schemas.responses(Overview))
def get_overview(
    since: Annotated[IsoDateTime | None, Query(alias="from", description="ISO 8601; default: 24 hours before `to`")] = None,
    until: Annotated[IsoDateTime | None, Query(alias="to", description="ISO 8601; default: now")] = None,
    include_dashboard: Annotated[bool, Query(description="count the dashboard's own requests too")] = False,
):
    return http.respond(app, lambda who, _ctx: overview.overview(who, since=since, until=until,
                                                                 include_dashboard=include_dashboard))


handler = http.entrypoint(app)
