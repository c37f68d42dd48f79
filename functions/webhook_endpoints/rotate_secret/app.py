"""POST /v1/webhook-endpoints/{id}/rotate-secret: a new secret, shown once; the old one signs for 24 h more."""

from tahsil.api import http, schemas
from tahsil.webhooks import endpoints
from tahsil.webhooks.models import RotatedWebhookEndpoint

app = http.resolver()


@app.post("/v1/webhook-endpoints/<id>/rotate-secret", summary="Rotate the signing secret", tags=["Webhooks"],
          responses=schemas.responses(RotatedWebhookEndpoint, 404))
def rotate(id: str):  # noqa: A002
    return http.respond(app, lambda who, _ctx: endpoints.rotate_secret(who, id))


handler = http.entrypoint(app)
