"""GET /v1/credential-guards: each guard rule, its status and enforcement, and this account's legacy rows in the key's mode."""

from tahsil.api import http, schemas
from tahsil.console import guards
from tahsil.console.models import CredentialGuards

app = http.resolver()


@app.get("/v1/credential-guards", summary="Credential guards and their audit", tags=["API keys"],
         responses=schemas.responses(CredentialGuards))
def credential_guards():
    return http.respond(app, lambda who, _ctx: guards.audit(who.merchant_id, who.mode))


handler = http.entrypoint(app)
