"""POST /dashboard/session: the dashboard's session with Cognito: sign in, renew, sign out, TOTP MFA.

The page posts here (its own origin, so its CSP can keep ``connect-src 'self'``); this function
calls Cognito and answers what the page needs. What a body does, by ``action`` (or, without one,
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

import json
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from pydantic import SecretStr, StringConstraints

from tahsil.api import http
from tahsil.api.params import Body
from tahsil.console import cognito
from tahsil.kernel.errors import InvalidRequest, Unauthenticated
from tahsil.kernel.models import Strict

app = http.resolver()


class SessionCreate(Strict):
    action: Literal["sign_in", "new_password", "mfa", "refresh", "sign_out", "totp_setup", "totp_verify"] | None = None
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)] | None = None
    password: SecretStr | None = None
    session: Annotated[str, StringConstraints(max_length=4096)] | None = None
    new_password: SecretStr | None = None
    mfa_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")] | None = None
    refresh_token: Annotated[SecretStr, StringConstraints(max_length=8192)] | None = None


def _action(body: SessionCreate) -> str:
    if body.action:
        return body.action
    if body.session and body.new_password:
        return "new_password"
    if body.session and body.mfa_code:
        return "mfa"
    if body.refresh_token:
        return "refresh"
    return "sign_in"


def _need(value: object, param: str) -> None:
    if not value:
        raise InvalidRequest(f"{param} is required", param=param)


def _bearer() -> str:
    header = app.current_event.headers.get("Authorization") or ""
    if header[:7].lower() != "bearer " or not header[7:].strip():
        raise Unauthenticated("send the session's access token: Authorization: Bearer <access_token>")
    return header[7:].strip()


@app.post("/dashboard/session", include_in_schema=False)
def create_session(body: Annotated[SessionCreate, Body()]):
    action = _action(body)
    if action in ("sign_in", "new_password", "mfa"):
        _need(body.email, "email")
    if action == "sign_in":
        _need(body.password, "password")
        answer = cognito.sign_in(body.email, body.password.get_secret_value())
    elif action == "new_password":
        _need(body.session, "session")
        _need(body.new_password, "new_password")
        answer = cognito.set_new_password(body.email, body.session, body.new_password.get_secret_value())
    elif action == "mfa":
        _need(body.session, "session")
        _need(body.mfa_code, "mfa_code")
        answer = cognito.answer_mfa(body.email, body.session, body.mfa_code)
    elif action == "refresh":
        _need(body.refresh_token, "refresh_token")
        answer = cognito.refresh(body.refresh_token.get_secret_value())
    elif action == "sign_out":
        answer = cognito.sign_out(_bearer())
    elif action == "totp_setup":
        answer = cognito.totp_setup(_bearer())
    else:
        _need(body.mfa_code, "mfa_code")
        answer = cognito.totp_verify(_bearer(), body.mfa_code)
    return Response(200, http.JSON, json.dumps({"success": True, "data": answer}),
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


handler = http.entrypoint(app, rate_class="public")
