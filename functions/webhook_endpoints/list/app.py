"""GET /v1/webhook-endpoints: this mode's endpoints (never their secrets)."""

from tahsil.api import http, schemas
from tahsil.webhooks import endpoints
from tahsil.webhooks.models import WebhookEndpointList

app = http.resolver()


@app.get("/v1/webhook-endpoints", summary="List webhook endpoints", tags=["Webhooks"],
         responses=schemas.responses(WebhookEndpointList))
def list_endpoints():
    return http.respond(app, lambda who, _ctx: endpoints.list_endpoints(who))


handler = http.entrypoint(app)
