"""POST /v1/webhook-endpoints: register a URL for events; the signing secret is shown only here."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.webhooks import endpoints
from tahsil.webhooks.models import CreatedWebhookEndpoint, EndpointCreate

app = http.resolver()


@app.post("/v1/webhook-endpoints", summary="Create a webhook endpoint", tags=["Webhooks"],
          responses=schemas.responses(CreatedWebhookEndpoint, status=201))
def create(body: Annotated[EndpointCreate, Body()]):
    return http.respond(app, lambda who, _ctx: endpoints.create_from(who, body, requested_version=http.requested_version()),
                        status=201)


handler = http.entrypoint(app)
