"""POST /v1/webhook-endpoints/{id}/test: send a test event through the real pipeline."""

from tahsil.api import http
from tahsil.webhooks import webhooks

app = http.resolver()


@app.post("/v1/webhook-endpoints/<id>/test", summary="Send a test event", tags=["Webhooks"])
def send_test(id: str):  # noqa: A002
    return http.respond(app, lambda who, ctx: webhooks.send_test(who, id, ctx), status=202)


handler = http.entrypoint(app)
