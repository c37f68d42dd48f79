"""POST /v1/account/api-version: move the account's API version pin forward (every key follows)."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.identity import account
from tahsil.identity.models import ApiVersionPin, ApiVersionUpdate

app = http.resolver()


@app.post("/v1/account/api-version", summary="Upgrade the API version pin", tags=["API versions"],
          responses=schemas.responses(ApiVersionPin))
def upgrade(body: Annotated[ApiVersionUpdate, Body()]):
    return http.respond(app, lambda who, _ctx: account.upgrade_api_version(who, body.api_version))


handler = http.entrypoint(app)
