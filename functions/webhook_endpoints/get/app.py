"""GET /v1/webhook-endpoints/{id}: one endpoint (never its secret)."""

from tahsil.api import http, schemas
from tahsil.webhooks import endpoints
from tahsil.webhooks.models import WebhookEndpoint

app = http.resolver()


@app.get("/v1/webhook-endpoints/<id>", summary="Retrieve a webhook endpoint", tags=["Webhooks"],
         responses=schemas.responses(WebhookEndpoint, 404))
def get_endpoint(id: str):  # noqa: A002
    return http.respond(app, lambda who, _ctx: endpoints.endpoint_view(endpoints.load_endpoint(who, id)))


handler = http.entrypoint(app)
