"""GET /v1/payments/{id}: one payment, as it stands now."""


from tahsil.api import http, schemas
from tahsil.payments import payments
from tahsil.payments.models import Payment

app = http.resolver()


@app.get("/v1/payments/<id>", summary="Retrieve a payment", tags=["Payments"],
          responses=schemas.responses(Payment, 404))
def get_payment(id: str):
    return http.respond(app, lambda who, _ctx: payments.get(who, id))


handler = http.entrypoint(app)
