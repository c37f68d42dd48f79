"""GET /v1/balance-transactions: the ledger's movements, newest first, cursor paging (starting_after)."""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Query
from tahsil.payments import balances

app = http.resolver()


@app.get("/v1/balance-transactions", summary="List balance transactions", tags=["Balance"],
         responses=schemas.responses(balances.BalanceTransactionList))
def list_balance_transactions(
    type: Annotated[balances.BtxType | None, Query()] = None,
    created_gte: Annotated[str | None, Query(max_length=40, description="ISO 8601, inclusive")] = None,
    created_lte: Annotated[str | None, Query(max_length=40, description="ISO 8601, inclusive")] = None,
    payout: Annotated[str | None, Query(max_length=64)] = None,
    source: Annotated[str | None, Query(max_length=64, description="The payment id that moved the money")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(max_length=64)] = None,
):
    return http.respond(app, lambda who, _ctx: balances.list_balance_transactions(
        who, limit=limit, starting_after=starting_after, type_=type, created_gte=created_gte, created_lte=created_lte,
        payout=payout, source=source))


handler = http.entrypoint(app)
