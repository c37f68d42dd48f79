"""GET /v1/api-keys: the account's keys, prefix and last 4 only, with scopes, allowlist and last use."""

from typing import Annotated, Literal

from tahsil.api import http, schemas
from tahsil.api.params import Query
from tahsil.identity import keys
from tahsil.identity.models import ApiKeyList

app = http.resolver()


@app.get("/v1/api-keys", summary="List API keys", tags=["API keys"], responses=schemas.responses(ApiKeyList))
def list_keys(mode: Annotated[Literal["test", "live"] | None, Query()] = None):
    return http.respond(app, lambda who, _ctx: keys.list_keys(who, mode=mode))


handler = http.entrypoint(app)
