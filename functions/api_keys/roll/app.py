"""POST /v1/api-keys/{id}/roll: a new key in its place; the old one stops now, or after expires_in (<= 24 h)."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.identity import keys
from tahsil.identity.models import ApiKey, ApiKeyRoll

app = http.resolver()
NOW = ApiKeyRoll()  # no body: the old key stops working at once


@app.post("/v1/api-keys/<id>/roll", summary="Roll an API key", tags=["API keys"],
          responses=schemas.responses(ApiKey, 404, 409))
def roll_key(id: str, body: Annotated[ApiKeyRoll, Body()] = NOW):  # noqa: A002
    return http.respond(app, lambda who, _ctx: keys.roll(who, id, body))


handler = http.entrypoint(app)
