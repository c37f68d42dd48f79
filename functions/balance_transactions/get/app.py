"""GET /v1/balance-transactions/{id}: one ledger movement (btx_...)."""

from tahsil.api import http, schemas
from tahsil.payments import balances

app = http.resolver()


@app.get("/v1/balance-transactions/<id>", summary="Retrieve a balance transaction", tags=["Balance"],
         responses=schemas.responses(balances.BalanceTransaction, 404))
def get_balance_transaction(id: str):
    return http.respond(app, lambda who, _ctx: balances.get_balance_transaction(who, id))


handler = http.entrypoint(app)
