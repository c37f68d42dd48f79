"""GET /v1/transactions: offset pagination with a total, as seed 002 documents it; starting_after beyond offset 1000."""

from typing import Annotated, Literal

from tahsil.api import http, schemas
from tahsil.api.params import Query
from tahsil.payments import payments
from tahsil.payments.models import TransactionList

app = http.resolver()


@app.get("/v1/transactions", summary="List transactions", tags=["Transactions"],
          responses=schemas.responses(TransactionList))
def list_transactions(
    status: Annotated[Literal["authorized", "captured", "voided", "refunded", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, description="At most 1000; page further with starting_after.")] = 0,
    starting_after: Annotated[str | None, Query(max_length=64)] = None,
):
    return http.respond(app, lambda who, _ctx: payments.list_transactions(who, status=status, limit=limit, offset=offset,
                                                                          starting_after=starting_after))


handler = http.entrypoint(app)
