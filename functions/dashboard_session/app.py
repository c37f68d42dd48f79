"""POST /dashboard/session: the dashboard's sign-in form, answered with a Cognito ID token.

The page posts the email and password here (its own origin, so its CSP can keep
``connect-src 'self'``); this function calls Cognito's InitiateAuth (USER_PASSWORD_AUTH) and
answers the ID token, which the page then sends as ``Authorization: Bearer`` to /v1. A user
created by an operator answers the NEW_PASSWORD_REQUIRED challenge here too. Nothing is stored;
the body is never logged (this is not a /v1 route, so it has no request-log record), and the
per-IP public rate limit applies.
"""

import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import SecretStr, StringConstraints

from tahsil.api import http
from tahsil.console import cognito
from tahsil.kernel.errors import InvalidRequest
from tahsil.kernel.models import Strict

app = http.resolver()


class SessionCreate(Strict):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: SecretStr | None = None
    session: Annotated[str, StringConstraints(max_length=4096)] | None = None
    new_password: SecretStr | None = None


@app.post("/dashboard/session", include_in_schema=False)
def create_session(body: Annotated[SessionCreate, Body()]):
    if body.session and body.new_password:
        answer = cognito.set_new_password(body.email, body.session, body.new_password.get_secret_value())
    elif body.password:
        answer = cognito.sign_in(body.email, body.password.get_secret_value())
    else:
        raise InvalidRequest("password is required", param="password")
    return Response(200, http.JSON, json.dumps({"success": True, "data": answer}),
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


handler = http.entrypoint(app, rate_class="public")
