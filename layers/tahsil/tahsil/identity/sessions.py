"""The dashboard's sign-in form (POST /dashboard/session) and the MFA step-up of live powers, on Cognito.

Sessions last an hour (the access token) and are renewed with the refresh token
(``REFRESH_TOKEN_AUTH``), for a day at most; signing out is Cognito's global sign-out, which
revokes every token of the user. TOTP MFA (``SOFTWARE_TOKEN_MFA``) is available to every user
and, with the template's ``RequireOwnerMfa`` in the prod stage, required of owners.

``handle`` answers the form: what a body does is picked by its ``action`` (or, without one, by the
fields it carries), each action names the field it lacks, and the answer is a session, a
challenge, or the outcome of a TOTP set-up. Nothing is stored but the MFA step-up record.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from tahsil.identity import cognito
from tahsil.identity.cognito import MERCHANT_CLAIM, TOTP, SignInUnavailable, role_of
from tahsil.identity.models import SessionCreate
from tahsil.identity.roles import STEP_UP_SECONDS
from tahsil.kernel.errors import InvalidRequest, MfaStepUpRequired, TahsilError, Unauthenticated
from tahsil.kernel.principal import Principal
from tahsil.store import dal


def _session(answer: dict[str, Any], username: str, refresh_token: str | None = None) -> dict[str, Any]:
    result = answer.get("AuthenticationResult")
    if result:
        claims = json.loads(cognito.b64url(result["IdToken"].split(".")[1]))
        return {"object": "dashboard_session", "access_token": result["AccessToken"], "token_type": "Bearer",
                "refresh_token": result.get("RefreshToken") or refresh_token,
                "expires_in": int(result.get("ExpiresIn") or 3600), "email": claims.get("email") or username,
                "merchant_id": claims.get(MERCHANT_CLAIM), "role": role_of(claims)}
    challenge = answer.get("ChallengeName")
    if challenge == "NEW_PASSWORD_REQUIRED":
        return {"object": "dashboard_challenge", "challenge": challenge, "session": answer.get("Session"),
                "message": "choose a new password to finish signing in"}
    if challenge == TOTP:
        return {"object": "dashboard_challenge", "challenge": challenge, "session": answer.get("Session"),
                "message": "enter the 6-digit code from your authenticator app"}
    raise Unauthenticated(f"this sign-in needs {challenge}, which the dashboard does not support yet; ask an operator")


def _refuse(exc: Exception) -> TahsilError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("NotAuthorizedException", "UserNotFoundException", "CodeMismatchException", "ExpiredCodeException"):
        # The same answer for a wrong password and an unknown user: no user enumeration.
        return Unauthenticated("incorrect email or password")
    if code == "UserNotConfirmedException":
        return Unauthenticated("this user is not confirmed yet")
    if code == "PasswordResetRequiredException":
        return Unauthenticated("a password reset is required for this user; ask an operator")
    if code in ("EnableSoftwareTokenMFAException", "SoftwareTokenMFANotFoundException"):
        return InvalidRequest("that code does not match your authenticator app: try the current one", param="mfa_code")
    if code == "InvalidPasswordException":
        message = getattr(exc, "response", {}).get("Error", {}).get("Message", "the password does not meet the policy")
        return InvalidRequest(message.split(": ", 1)[-1], param="new_password")
    if code in ("TooManyRequestsException", "LimitExceededException", "TooManyFailedAttemptsException"):
        return Unauthenticated("too many sign-in attempts; wait a minute and try again")
    return SignInUnavailable("sign-in is unavailable right now; try again shortly")


def sign_in(username: str, password: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    _, client_id = cognito.pool()
    try:
        answer = cognito.client().initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                                AuthParameters={"USERNAME": username, "PASSWORD": password})
    except ClientError as exc:
        raise _refuse(exc) from None
    return _session(answer, username)


def set_new_password(username: str, session: str, new_password: str) -> dict[str, Any]:
    """Answer NEW_PASSWORD_REQUIRED (a user created by an operator signs in with a temporary password)."""
    from botocore.exceptions import ClientError

    _, client_id = cognito.pool()
    try:
        answer = cognito.client().respond_to_auth_challenge(
            ClientId=client_id, ChallengeName="NEW_PASSWORD_REQUIRED", Session=session,
            ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": new_password})
    except ClientError as exc:
        raise _refuse(exc) from None
    return _session(answer, username)


def answer_mfa(username: str, session: str, code: str) -> dict[str, Any]:
    """Answer SOFTWARE_TOKEN_MFA: the current code of the user's authenticator app.

    The session that comes out has passed MFA now: that is recorded (``record_mfa``), so for the next
    ``STEP_UP_SECONDS`` it may use the live powers (``require_recent_mfa``). Signing in again with the code is
    how a session steps up."""
    from botocore.exceptions import ClientError

    _, client_id = cognito.pool()
    try:
        answer = cognito.client().respond_to_auth_challenge(
            ClientId=client_id, ChallengeName=TOTP, Session=session,
            ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": code})
    except ClientError as exc:
        raise _refuse(exc) from None
    signed_in = _session(answer, username)
    if signed_in.get("access_token"):
        record_mfa(signed_in["access_token"])
    return signed_in


# ---------------------------------------------------------------- MFA step-up (live powers)


def record_mfa(token: str, *, now: float | None = None) -> None:
    """This access token's session answered a TOTP challenge just now (``MFA#<digest>``, kept until it is useless).

    Cognito's access tokens do not say whether MFA was used (no ``amr``), and ``auth_time`` survives a refresh
    and a TOTP set-up in the middle of a session; so the proof is recorded where only our sign-in can write it."""
    at = int(time.time() if now is None else now)
    claims = json.loads(cognito.b64url(token.split(".")[1]))
    dal.put(dal.credentials_table(), {"pk": f"MFA#{cognito.session_id(token)}", "sk": "MFA", "sub": claims.get("sub"),
                                      "passed_at": at, "ttl": at + STEP_UP_SECONDS + 3600})


def require_recent_mfa(p: Principal, action: str, *, now: float | None = None) -> None:
    """A dashboard session uses a live power only within STEP_UP_SECONDS of passing MFA; else 403 naming what to do."""
    if p.key_type != "dashboard":
        return
    record = dal.get(dal.credentials_table(), f"MFA#{p.session}", "MFA") if p.session else None
    at = time.time() if now is None else now
    if record is None or at - int(record["passed_at"]) > STEP_UP_SECONDS:
        raise MfaStepUpRequired(
            f"{action} needs a session that passed two-factor authentication in the last {STEP_UP_SECONDS // 60} "
            "minutes: sign in again with your authenticator code (turn TOTP on first if you have not), then retry",
            step_up_seconds=STEP_UP_SECONDS)


def refresh(refresh_token: str) -> dict[str, Any]:
    """A new access token for a live session (REFRESH_TOKEN_AUTH); refused once the session was signed out."""
    from botocore.exceptions import ClientError

    _, client_id = cognito.pool()
    try:
        answer = cognito.client().initiate_auth(ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                                                AuthParameters={"REFRESH_TOKEN": refresh_token})
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NotAuthorizedException", "UserNotFoundException"):
            raise Unauthenticated("your dashboard session has ended: sign in again") from None
        raise _refuse(exc) from None
    session = _session(answer, "", refresh_token)
    cognito.SESSIONS.user(session["access_token"])  # a disabled or deleted user gets no renewed session
    return session


def sign_out(token: str) -> dict[str, Any]:
    """Cognito's global sign-out: every access and refresh token of the user stops working."""
    from botocore.exceptions import ClientError

    cognito.verify(token)
    try:
        cognito.client().global_sign_out(AccessToken=token)
    except ClientError as exc:
        raise _refuse(exc) from None
    cognito.SESSIONS.forget(token)
    return {"object": "dashboard_session", "signed_out": True}


def totp_setup(token: str) -> dict[str, Any]:
    """Start TOTP MFA for the signed-in user: the secret for their authenticator app (shown once)."""
    from botocore.exceptions import ClientError

    claims = cognito.verify(token)
    try:
        secret = cognito.client().associate_software_token(AccessToken=token)["SecretCode"]
    except ClientError as exc:
        raise _refuse(exc) from None
    label = urllib.parse.quote(f"Tahsil:{claims.get('email') or claims.get('sub')}")
    return {"object": "totp_setup", "secret": secret,
            "otpauth_uri": f"otpauth://totp/{label}?secret={secret}&issuer=Tahsil",
            "message": "add this secret to your authenticator app, then confirm with its current code"}


def totp_verify(token: str, code: str) -> dict[str, Any]:
    """Confirm TOTP MFA with the app's current code and make it the user's MFA: later sign-ins ask for a code."""
    from botocore.exceptions import ClientError

    cognito.verify(token)
    client = cognito.client()
    try:
        answer = client.verify_software_token(AccessToken=token, UserCode=code, FriendlyDeviceName="Tahsil dashboard")
        if answer.get("Status") != "SUCCESS":
            raise InvalidRequest("that code does not match your authenticator app: try the current one", param="mfa_code")
        client.set_user_mfa_preference(AccessToken=token, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    except ClientError as exc:
        code_name = exc.response.get("Error", {}).get("Code", "")
        if code_name == "CodeMismatchException":
            raise InvalidRequest("that code does not match your authenticator app: try the current one",
                                 param="mfa_code") from None
        raise _refuse(exc) from None
    cognito.SESSIONS.forget(token)  # the next request sees the MFA at once
    return {"object": "totp_setup", "enabled": True}


# ---------------------------------------------------------------- the form: one body, one action


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


def _bearer(authorization: str | None) -> str:
    header = authorization or ""
    if header[:7].lower() != "bearer " or not header[7:].strip():
        raise Unauthenticated("send the session's access token: Authorization: Bearer <access_token>")
    return header[7:].strip()


def handle(body: SessionCreate, authorization: str | None) -> dict[str, Any]:
    """What POST /dashboard/session answers: the body's action, done (``authorization``: the request's header)."""
    action = _action(body)
    if action in ("sign_in", "new_password", "mfa"):
        _need(body.email, "email")
    if action == "sign_in":
        _need(body.password, "password")
        return sign_in(body.email, body.password.get_secret_value())
    if action == "new_password":
        _need(body.session, "session")
        _need(body.new_password, "new_password")
        return set_new_password(body.email, body.session, body.new_password.get_secret_value())
    if action == "mfa":
        _need(body.session, "session")
        _need(body.mfa_code, "mfa_code")
        return answer_mfa(body.email, body.session, body.mfa_code)
    if action == "refresh":
        _need(body.refresh_token, "refresh_token")
        return refresh(body.refresh_token.get_secret_value())
    if action == "sign_out":
        return sign_out(_bearer(authorization))
    if action == "totp_setup":
        return totp_setup(_bearer(authorization))
    _need(body.mfa_code, "mfa_code")
    return totp_verify(_bearer(authorization), body.mfa_code)
