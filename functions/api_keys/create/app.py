"""POST /v1/api-keys: a new key with its scopes and IP allowlist; the key (and signing secret) shown once."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.identity import keys
from tahsil.identity.models import ApiKey, ApiKeyCreate

app = http.resolver()


@app.post("/v1/api-keys", summary="Create an API key", tags=["API keys"],
          responses=schemas.responses(ApiKey, status=201))
def create_key(body: Annotated[ApiKeyCreate, Body()]):
    return http.respond(app, lambda who, _ctx: keys.create(who, body), status=201)


handler = http.entrypoint(app)
