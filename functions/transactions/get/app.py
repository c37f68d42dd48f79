"""GET /v1/transactions/{id}: one transaction (authorization, capture, void, refund, decline)."""


from tahsil import http, payments, schemas

app = http.resolver()


@app.get("/v1/transactions/<id>", summary="Retrieve a transaction", tags=["Transactions"],
          responses=schemas.responses(schemas.Transaction, 404))
def get_transaction(id: str):
    return http.respond(app, lambda who, _ctx: payments.get_transaction(who, id))


handler = http.entrypoint(app)
