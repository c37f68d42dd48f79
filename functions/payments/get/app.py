"""GET /v1/payments/{id}: one payment, as it stands now."""


from tahsil import http, payments, schemas

app = http.resolver()


@app.get("/v1/payments/<id>", summary="Retrieve a payment", tags=["Payments"],
          responses=schemas.responses(schemas.Payment, 404))
def get_payment(id: str):
    return http.respond(app, lambda who, _ctx: payments.get(who, id))


handler = http.entrypoint(app)
