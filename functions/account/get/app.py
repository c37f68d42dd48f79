"""GET /v1/account: the account's profile (legal name, MCC, support contacts) and payout destination (masked)."""

from tahsil.api import http, schemas
from tahsil.console import profile
from tahsil.console.models import Account

app = http.resolver()


@app.get("/v1/account", summary="Get the account profile", tags=["Account"], responses=schemas.responses(Account))
def get_account():
    return http.respond(app, lambda who, _ctx: profile.get(who))


handler = http.entrypoint(app)
