"""GET /v1/request-logs: this account's requests (this mode), newest first, filtered, with a cursor."""

from typing import Annotated, Literal

from tahsil.api import http, requestlog, schemas
from tahsil.api.models import RequestLogList
from tahsil.api.params import Query
from tahsil.kernel.models import IsoDateTime

app = http.resolver()


@app.get("/v1/request-logs", summary="List request logs", tags=["Request logs"],
         responses=schemas.responses(RequestLogList))
def list_request_logs(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    status: Annotated[str | None, Query(pattern=r"^([1-5]xx|[1-5][0-9][0-9])$", description="404, or a class: 4xx")] = None,
    path: Annotated[str | None, Query(max_length=300, description="a route (/v1/payments/{id}) or an exact path")] = None,
    key_id: Annotated[str | None, Query(max_length=64)] = None,
    method: Annotated[Literal["GET", "POST", "DELETE", "PUT", "PATCH"] | None, Query()] = None,
    created_gte: Annotated[IsoDateTime | None, Query(description="ISO 8601, inclusive")] = None,
    created_lte: Annotated[IsoDateTime | None, Query(description="ISO 8601, inclusive")] = None,
):
    return http.respond(app, lambda who, _ctx: requestlog.list_logs(
        who, limit=limit, cursor=cursor, status=status, path=path, key_id=key_id, method=method,
        created_gte=created_gte, created_lte=created_lte,
    ))


handler = http.entrypoint(app)
