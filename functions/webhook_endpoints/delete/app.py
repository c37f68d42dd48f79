"""DELETE /v1/webhook-endpoints/{id}: stop sending to it."""

from tahsil.api import http, schemas
from tahsil.webhooks import endpoints
from tahsil.webhooks.models import DeletedWebhookEndpoint

app = http.resolver()


@app.delete("/v1/webhook-endpoints/<id>", summary="Delete a webhook endpoint", tags=["Webhooks"],
            responses=schemas.responses(DeletedWebhookEndpoint, 404))
def delete(id: str):  # noqa: A002
    return http.respond(app, lambda who, _ctx: endpoints.delete_endpoint(who, id))


handler = http.entrypoint(app)
