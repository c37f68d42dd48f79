"""GET /v1/transactions/{id}: one transaction (authorization, capture, void, refund, decline)."""


from tahsil.api import http, schemas
from tahsil.payments import payments
from tahsil.payments.models import Transaction

app = http.resolver()


@app.get("/v1/transactions/<id>", summary="Retrieve a transaction", tags=["Transactions"],
          responses=schemas.responses(Transaction, 404))
def get_transaction(id: str):
    return http.respond(app, lambda who, _ctx: payments.get_transaction(who, id))


handler = http.entrypoint(app)
