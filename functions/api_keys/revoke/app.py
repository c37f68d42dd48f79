"""DELETE /v1/api-keys/{id}: revoke a key; it fails from the next request on."""

from tahsil.api import http, schemas
from tahsil.identity import keys
from tahsil.identity.models import ApiKey

app = http.resolver()


@app.delete("/v1/api-keys/<id>", summary="Revoke an API key", tags=["API keys"],
            responses=schemas.responses(ApiKey, 404))
def revoke_key(id: str):  # noqa: A002
    return http.respond(app, lambda who, _ctx: keys.revoke(who, id))


handler = http.entrypoint(app)
