"""PATCH /v1/webhook-endpoints/{id}: change the URL, the events, or enable/disable it."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.webhooks import endpoints
from tahsil.webhooks.models import EndpointUpdate, WebhookEndpoint

app = http.resolver()


@app.patch("/v1/webhook-endpoints/<id>", summary="Update a webhook endpoint", tags=["Webhooks"],
           responses=schemas.responses(WebhookEndpoint, 404))
def update(id: str, body: Annotated[EndpointUpdate, Body()]):  # noqa: A002
    return http.respond(app, lambda who, _ctx: endpoints.update_endpoint(who, id, body.model_dump(exclude_unset=True)))


handler = http.entrypoint(app)
