"""GET /v1/api-versions: the dated versions, what each changed, and the one this account is pinned to."""

from tahsil.api import http, schemas
from tahsil.identity import account
from tahsil.identity.models import ApiVersions

app = http.resolver()


@app.get("/v1/api-versions", summary="List API versions", tags=["API versions"], responses=schemas.responses(ApiVersions))
def list_versions():
    return http.respond(app, lambda who, _ctx: account.api_versions(who))


handler = http.entrypoint(app)
