"""GET /v1/payments: the merchant's payments, newest first, with a cursor."""

from typing import Annotated, Literal

from tahsil.api import http, schemas
from tahsil.api.params import Query
from tahsil.kernel.models import IsoDateTime
from tahsil.payments import payments
from tahsil.payments.models import PaymentList

app = http.resolver()

Status = Literal["authorized", "captured", "voided", "refunded", "partially_refunded", "failed", "expired"]


@app.get("/v1/payments", summary="List payments", tags=["Payments"],
          responses=schemas.responses(PaymentList))
def list_payments(
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(description="id of the last payment of the previous page")] = None,
    status: Annotated[Status | None, Query()] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    created_gte: Annotated[IsoDateTime | None, Query(description="ISO 8601, inclusive")] = None,
    created_lte: Annotated[IsoDateTime | None, Query(description="ISO 8601, inclusive")] = None,
):
    return http.respond(app, lambda who, _ctx: payments.list_payments(
        who, limit=limit, starting_after=starting_after, status=status,
        currency=currency, created_gte=created_gte, created_lte=created_lte,
    ))


handler = http.entrypoint(app)
