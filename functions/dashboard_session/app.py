"""POST /dashboard/session: the dashboard's session with Cognito: sign in, renew, sign out, TOTP MFA.

The page posts here (its own origin, so its CSP can keep ``connect-src 'self'``); this function
calls Cognito (``tahsil.identity.sessions``) and answers what the page needs. What a body does, by ``action`` (or, without one,
by the fields it carries):

- ``sign_in``: ``email`` and ``password`` (Cognito's USER_PASSWORD_AUTH). The answer is a session
  (``access_token``, sent as ``Authorization: Bearer`` to /v1, ``refresh_token``, ``expires_in``,
  ``email``, ``merchant_id``, ``role``) or a challenge: NEW_PASSWORD_REQUIRED (a user created by
  an operator) or SOFTWARE_TOKEN_MFA (a user with TOTP MFA);
- ``new_password``: ``email``, ``session`` and ``new_password``, the first challenge's answer;
- ``mfa``: ``email``, ``session`` and ``mfa_code``, the second's;
- ``refresh``: ``refresh_token``: a new access token (REFRESH_TOKEN_AUTH), while the session lives;
- ``sign_out``: with the session's ``Authorization: Bearer``: Cognito's global sign-out;
- ``totp_setup`` then ``totp_verify`` (``mfa_code``), with the session's ``Authorization: Bearer``:
  turn on TOTP MFA for the signed-in user.

Nothing is stored; the body is never logged (this is not a /v1 route, so it has no request-log
record), and the per-IP public rate limit applies.
"""

from __future__ import annotations

import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response

from tahsil.api import http
from tahsil.api.params import Body
from tahsil.identity import sessions
from tahsil.identity.models import SessionCreate

app = http.resolver()
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def authorization() -> str | None:
    return app.current_event.headers.get("Authorization")


@app.post("/dashboard/session", include_in_schema=False)
def create_session(body: Annotated[SessionCreate, Body()]):
    return Response(200, http.JSON, json.dumps({"success": True, "data": sessions.handle(body, authorization())}),
                    headers=NO_STORE)


handler = http.entrypoint(app, rate_class="public")
