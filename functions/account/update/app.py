"""PATCH /v1/account: change the profile or the payout destination (bank details checked: IBAN mod 97, ABA).

The payout destination is a live, owner-only power, audited and announced (tahsil.console.profile).
"""

from typing import Annotated

from tahsil.api import http, schemas
from tahsil.api.params import Body
from tahsil.console import profile
from tahsil.console.models import Account, AccountUpdate

app = http.resolver()


@app.patch("/v1/account", summary="Update the account profile", tags=["Account"], responses=schemas.responses(Account))
def update_account(body: Annotated[AccountUpdate, Body()]):
    return http.respond(app, lambda who, ctx: profile.update(who, body, ctx))


handler = http.entrypoint(app)
