"""POST /v1/go-live/reviews: ask an operator to enable live payments (one pending review at a time)."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.console import golive
from tahsil.console.models import GoLiveReview, GoLiveReviewRequest

app = http.resolver()
NO_NOTE = GoLiveReviewRequest()


@app.post("/v1/go-live/reviews", summary="Request a go-live review", tags=["Go-live"],
          responses=schemas.responses(GoLiveReview, 409, status=201))
def request_review(body: Annotated[GoLiveReviewRequest, Body()] = NO_NOTE):
    return http.respond(app, lambda who, _ctx: golive.request_review(who, body.note), status=201)


handler = http.entrypoint(app)
