"""GET /v1/go-live: the go-live checklist (each item with status, evidence and detail), score, blocking issues, reviews."""

from tahsil.api import http, schemas
from tahsil.console import golive
from tahsil.console.models import GoLive

app = http.resolver()


@app.get("/v1/go-live", summary="Go-live readiness", tags=["Go-live"], responses=schemas.responses(GoLive))
def get_go_live():
    return http.respond(app, lambda who, _ctx: golive.status(who))


handler = http.entrypoint(app)
