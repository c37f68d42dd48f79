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
    state = http.current()
    version = body.api_version or (state.version if state is not None else None)  # body, else Tahsil-Version
    return http.respond(app, lambda who, _ctx: endpoints.create_endpoint(
        who, name=body.name or body.url, url=body.url, enabled_events=body.enabled_events, description=body.description,
        api_version=version,
    ), status=201)


handler = http.entrypoint(app)
