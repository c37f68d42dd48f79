"""GET /v1/payment-intents: the merchant's payment intents, newest first, with a cursor."""

from typing import Annotated, Literal

from tahsil.api import http
from tahsil.api.params import Query
from tahsil.payments import intent_listing
from tahsil.payments.models import PaymentIntentList, intent_responses

app = http.resolver()

Status = Literal["created", "requires_action", "succeeded", "canceled", "expired", "locked"]


@app.get("/v1/payment-intents", summary="List payment intents", tags=["Payment intents"],
         responses=intent_responses(PaymentIntentList, 400, 401))
def list_intents(
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(description="id of the last intent of the previous page")] = None,
    status: Annotated[Status | None, Query()] = None,
):
    return http.respond(app, lambda who, _ctx: intent_listing.list_intents(who, limit=limit,
                                                                            starting_after=starting_after, status=status))


handler = http.entrypoint(app)
