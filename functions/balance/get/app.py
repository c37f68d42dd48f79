"""GET /v1/balance: available and pending per currency, from the ledger's counters (never its history)."""

from tahsil.api import http, schemas
from tahsil.payments import balances

app = http.resolver()


@app.get("/v1/balance", summary="Retrieve the balance", tags=["Balance"], responses=schemas.responses(balances.Balance))
def get_balance():
    return http.respond(app, lambda who, _ctx: balances.get_balance(who))


handler = http.entrypoint(app)
