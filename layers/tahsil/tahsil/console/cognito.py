"""Dashboard sign-in: Amazon Cognito access tokens, verified here, and the session calls behind the sign-in form.

Merchant staff sign in to the dashboard with their Cognito user (never with an API key pasted
into a browser). The dashboard then calls the same /v1 API as an integration does, with
``Authorization: Bearer <Cognito access token>`` and ``Tahsil-Mode: test|live``; ``tahsil.api.auth``
hands such a token to ``verify`` below before it would look up an API key.

What ``verify`` checks, all of it, on every request:
- the token is a compact JWS whose header says ``alg: RS256`` (``none``, ``HS256`` and any other
  algorithm are refused before a key is even looked up) and names a ``kid``;
- the signature, with the RSA public key of that ``kid`` from the user pool's JWKS
  (``https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json``; the local
  runtime's moto serves it at ``<AWS_ENDPOINT_URL>/<pool>/.well-known/jwks.json``). The JWKS
  URL comes from configuration, never from the token;
- ``iss`` is the configured pool, ``token_use`` is ``access`` and ``client_id`` the configured
  app client (an ID token is refused: Cognito cannot revoke it), ``exp`` is in the future and
  ``iat`` not in the future (30 s of clock skew);
- the session is still alive: Cognito's ``GetUser`` with the token answers, which it stops doing
  once the user is signed out globally (by themselves or an operator), disabled or deleted. Its
  answer (or refusal) is cached per token for ``SESSION_CHECK_S`` (60 s) per execution
  environment, so a session ends at most a minute after Cognito ends it;
- ``custom:merchant_id`` (from ``GetUser``, so always current) is a merchant id. The attribute is
  immutable in the user pool and the app client cannot write it, so a user cannot move
  themselves to another merchant. ``custom:role`` (owner, developer, viewer; operators set it,
  the app client cannot write it) picks the user's scopes (``tahsil.kernel.principal.ROLE_SCOPES``).

The JWKS is cached per process for an hour; an unknown ``kid`` (key rotation) fetches it again,
at most once a minute, so a flood of forged tokens cannot turn into a flood of fetches.

Sessions last an hour (the access token) and are renewed with the refresh token
(``REFRESH_TOKEN_AUTH``), for a day at most; signing out is Cognito's global sign-out, which
revokes every token of the user. TOTP MFA (``SOFTWARE_TOKEN_MFA``) is available to every user
and, with the template's ``RequireOwnerMfa`` in the prod stage, required of owners.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from tahsil.kernel.config import settings
from tahsil.kernel.errors import Forbidden, InvalidRequest, MfaStepUpRequired, TahsilError, Unauthenticated
from tahsil.kernel.principal import ROLES, STEP_UP_SECONDS, Principal
from tahsil.store import aws

TOKEN_PATTERN = re.compile(r"^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
MERCHANT_CLAIM = "custom:merchant_id"
ROLE_CLAIM = "custom:role"
TOTP = "SOFTWARE_TOKEN_MFA"
SESSION_CHECK_S = 60  # how long one GetUser answer stands for a token
SESSION_CACHE_MAX = 2048
MERCHANT_ID = re.compile(r"^mer_[A-Za-z0-9]{8,64}$")
MAX_TOKEN = 8192
MAX_JWKS_BYTES = 64 * 1024
JWKS_TTL_S = 3600
REFETCH_MIN_S = 60
SKEW_S = 30


class SignInUnavailable(TahsilError):
    http_status = 503
    code = "SIGN_IN_UNAVAILABLE"


class SessionExpired(Unauthenticated):
    code = "SESSION_EXPIRED"


class MfaRequired(Forbidden):
    code = "MFA_REQUIRED"


def looks_like_token(value: str | None) -> bool:
    return bool(value) and len(value or "") <= MAX_TOKEN and bool(TOKEN_PATTERN.match(value or ""))


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def pool() -> tuple[str, str]:
    """(user pool id, app client id); a deployment without them has no dashboard sign-in."""
    s = settings()
    if not s.cognito_user_pool_id or not s.cognito_client_id:
        raise Unauthenticated("dashboard sign-in is not configured on this deployment (COGNITO_USER_POOL_ID)")
    return s.cognito_user_pool_id, s.cognito_client_id


def issuer(pool_id: str) -> str:
    return f"https://cognito-idp.{region()}.amazonaws.com/{pool_id}"


def jwks_url(pool_id: str) -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_COGNITO_IDP") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # the local runtime (moto) or another emulator
        return f"{endpoint.rstrip('/')}/{pool_id}/.well-known/jwks.json"
    return f"{issuer(pool_id)}/.well-known/jwks.json"


def fetch_jwks(url: str) -> dict[str, Any]:
    """The pool's public keys (tests replace this function; unit tests have no HTTP server)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "tahsil"})
    with urllib.request.urlopen(request, timeout=3) as answer:  # noqa: S310 - a configured https (or local) URL
        return json.loads(answer.read(MAX_JWKS_BYTES))


class _Keys:
    """kid -> RSA public key, per JWKS URL, refreshed hourly or when an unknown kid shows up."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, dict[str, Any]] = {}
        self.fetched: dict[str, float] = {}

    def clear(self) -> None:
        with self.lock:
            self.keys.clear()
            self.fetched.clear()

    def _load(self, url: str) -> None:
        try:
            document = fetch_jwks(url)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the pool is one answer: try again later
            raise SignInUnavailable("the dashboard's identity provider cannot be reached; try again shortly") from exc
        found: dict[str, Any] = {}
        for jwk in document.get("keys") or []:
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or not jwk.get("kid"):
                continue
            try:
                from cryptography.hazmat.primitives.asymmetric import rsa

                n = int.from_bytes(_b64(jwk["n"]), "big")
                e = int.from_bytes(_b64(jwk["e"]), "big")
                found[str(jwk["kid"])] = rsa.RSAPublicNumbers(e, n).public_key()
            except (KeyError, ValueError, binascii.Error):
                continue
        self.keys[url] = found
        self.fetched[url] = time.monotonic()

    def get(self, url: str, kid: str) -> Any:
        with self.lock:
            age = time.monotonic() - self.fetched.get(url, float("-inf"))
            if url not in self.keys or age > JWKS_TTL_S or (kid not in self.keys[url] and age > REFETCH_MIN_S):
                self._load(url)
            return self.keys[url].get(kid)


KEYS = _Keys()


def _clock() -> float:
    """The session cache's clock (tests move it)."""
    return time.monotonic()


class _Sessions:
    """token digest -> (checked at, the user's attributes or the error GetUser answered), for SESSION_CHECK_S."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[float, dict[str, Any] | TahsilError]] = {}

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def forget(self, token: str) -> None:
        with self.lock:
            self.entries.pop(_digest(token), None)

    def user(self, token: str) -> dict[str, Any]:
        digest, now = _digest(token), _clock()
        with self.lock:
            found = self.entries.get(digest)
        if found is None or now - found[0] >= SESSION_CHECK_S:
            found = (now, _get_user(token))
            with self.lock:
                if len(self.entries) >= SESSION_CACHE_MAX:
                    for old in sorted(self.entries, key=lambda d: self.entries[d][0])[: SESSION_CACHE_MAX // 4]:
                        del self.entries[old]
                self.entries[digest] = found
        if isinstance(found[1], TahsilError):
            raise type(found[1])(found[1].message)
        return found[1]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _get_user(token: str) -> dict[str, Any] | TahsilError:
    """Cognito's view of the token's user: attributes and MFA, or why the session has ended."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = _client().get_user(AccessToken=token)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException",
                    "PasswordResetRequiredException"):
            return Unauthenticated("your dashboard session has ended (signed out, or the user was disabled or "
                                   "removed): sign in again")
        raise SignInUnavailable("the dashboard's identity provider cannot be reached; try again shortly") from exc
    except BotoCoreError as exc:
        raise SignInUnavailable("the dashboard's identity provider cannot be reached; try again shortly") from exc
    user = {a["Name"]: a["Value"] for a in answer.get("UserAttributes") or []}
    user["mfa"] = list(answer.get("UserMFASettingList") or [])
    return user


SESSIONS = _Sessions()


def verify(token: str, *, now: float | None = None) -> dict[str, Any]:
    """The claims of a live dashboard session's access token, with the user's current attributes; else a 401."""
    invalid = Unauthenticated("invalid dashboard session token: sign in again")
    if not looks_like_token(token):
        raise invalid
    head_b64, body_b64, sig_b64 = token.split(".")
    try:
        header = json.loads(_b64(head_b64))
        claims = json.loads(_b64(body_b64))
        signature = _b64(sig_b64)
    except (ValueError, binascii.Error):
        raise invalid from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise invalid
    if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
        raise invalid
    pool_id, client_id = pool()
    key = KEYS.get(jwks_url(pool_id), header["kid"])
    if key is None:
        raise invalid
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        key.verify(signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise invalid from None
    now = time.time() if now is None else now
    if claims.get("iss") != issuer(pool_id) or claims.get("token_use") != "access" or claims.get("client_id") != client_id:
        raise invalid
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int) or iat > now + SKEW_S:
        raise invalid
    if exp <= now:
        raise SessionExpired("your dashboard session has expired: sign in again")
    user = SESSIONS.user(token)
    if user.get("sub") not in (None, claims.get("sub")):
        raise invalid
    if not MERCHANT_ID.match(str(user.get(MERCHANT_CLAIM) or "")):
        raise Unauthenticated("this dashboard user is not linked to a merchant account (custom:merchant_id)")
    role = user.get(ROLE_CLAIM)
    return {**claims, "email": user.get("email"), MERCHANT_CLAIM: user[MERCHANT_CLAIM],
            ROLE_CLAIM: role if role in ROLES else "viewer", "mfa": user.get("mfa") or []}


def role_of(claims: dict[str, Any]) -> str:
    role = claims.get(ROLE_CLAIM)
    return role if role in ROLES else "viewer"


def require_mfa(claims: dict[str, Any]) -> None:
    """Owners must have TOTP MFA when the deployment requires it (RequireOwnerMfa, prod stage)."""
    s = settings()
    if s.require_owner_mfa and s.stage == "prod" and role_of(claims) == "owner" and TOTP not in (claims.get("mfa") or []):
        raise MfaRequired("owners must turn on two-factor authentication (TOTP) before using the dashboard: "
                          "set it up from the dashboard's prompt")


def user_label(claims: dict[str, Any]) -> str:
    """Who, for request logs and review records: the email, else the Cognito username."""
    return str(claims.get("email") or claims.get("cognito:username") or claims.get("sub"))


# ---------------------------------------------------------------- the sign-in form (POST /dashboard/session)


def _client() -> Any:
    return aws.client("cognito-idp")


def _session(answer: dict[str, Any], username: str, refresh_token: str | None = None) -> dict[str, Any]:
    result = answer.get("AuthenticationResult")
    if result:
        claims = json.loads(_b64(result["IdToken"].split(".")[1]))
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

    _, client_id = pool()
    try:
        answer = _client().initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                         AuthParameters={"USERNAME": username, "PASSWORD": password})
    except ClientError as exc:
        raise _refuse(exc) from None
    return _session(answer, username)


def set_new_password(username: str, session: str, new_password: str) -> dict[str, Any]:
    """Answer NEW_PASSWORD_REQUIRED (a user created by an operator signs in with a temporary password)."""
    from botocore.exceptions import ClientError

    _, client_id = pool()
    try:
        answer = _client().respond_to_auth_challenge(
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

    _, client_id = pool()
    try:
        answer = _client().respond_to_auth_challenge(
            ClientId=client_id, ChallengeName=TOTP, Session=session,
            ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": code})
    except ClientError as exc:
        raise _refuse(exc) from None
    signed_in = _session(answer, username)
    if signed_in.get("access_token"):
        record_mfa(signed_in["access_token"])
    return signed_in


# ---------------------------------------------------------------- MFA step-up (live powers)


def session_id(token: str) -> str:
    """What names a session's MFA record: the token's SHA-256 (only its holder can name it; the token is not stored)."""
    return _digest(token)


def record_mfa(token: str, *, now: float | None = None) -> None:
    """This access token's session answered a TOTP challenge just now (``MFA#<digest>``, kept until it is useless).

    Cognito's access tokens do not say whether MFA was used (no ``amr``), and ``auth_time`` survives a refresh
    and a TOTP set-up in the middle of a session; so the proof is recorded where only our sign-in can write it."""
    from tahsil.store import dal

    at = int(time.time() if now is None else now)
    claims = json.loads(_b64(token.split(".")[1]))
    dal.put(dal.credentials_table(), {"pk": f"MFA#{session_id(token)}", "sk": "MFA", "sub": claims.get("sub"),
                                      "passed_at": at, "ttl": at + STEP_UP_SECONDS + 3600})


def require_recent_mfa(p: Principal, action: str, *, now: float | None = None) -> None:
    """A dashboard session uses a live power only within STEP_UP_SECONDS of passing MFA; else 403 naming what to do."""
    from tahsil.store import dal

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

    _, client_id = pool()
    try:
        answer = _client().initiate_auth(ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                                         AuthParameters={"REFRESH_TOKEN": refresh_token})
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NotAuthorizedException", "UserNotFoundException"):
            raise Unauthenticated("your dashboard session has ended: sign in again") from None
        raise _refuse(exc) from None
    session = _session(answer, "", refresh_token)
    SESSIONS.user(session["access_token"])  # a disabled or deleted user gets no renewed session
    return session


def sign_out(token: str) -> dict[str, Any]:
    """Cognito's global sign-out: every access and refresh token of the user stops working."""
    from botocore.exceptions import ClientError

    verify(token)
    try:
        _client().global_sign_out(AccessToken=token)
    except ClientError as exc:
        raise _refuse(exc) from None
    SESSIONS.forget(token)
    return {"object": "dashboard_session", "signed_out": True}


def totp_setup(token: str) -> dict[str, Any]:
    """Start TOTP MFA for the signed-in user: the secret for their authenticator app (shown once)."""
    from botocore.exceptions import ClientError

    claims = verify(token)
    try:
        secret = _client().associate_software_token(AccessToken=token)["SecretCode"]
    except ClientError as exc:
        raise _refuse(exc) from None
    label = urllib.parse.quote(f"Tahsil:{claims.get('email') or claims.get('sub')}")
    return {"object": "totp_setup", "secret": secret,
            "otpauth_uri": f"otpauth://totp/{label}?secret={secret}&issuer=Tahsil",
            "message": "add this secret to your authenticator app, then confirm with its current code"}


def totp_verify(token: str, code: str) -> dict[str, Any]:
    """Confirm TOTP MFA with the app's current code and make it the user's MFA: later sign-ins ask for a code."""
    from botocore.exceptions import ClientError

    verify(token)
    client = _client()
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
    SESSIONS.forget(token)  # the next request sees the MFA at once
    return {"object": "totp_setup", "enabled": True}


# ---------------------------------------------------------------- operators (tahsil users create)


def create_user(email: str, merchant_id: str, *, temporary_password: str, permanent: bool = False,
                role: str = "owner") -> dict[str, Any]:
    """A dashboard user for ``merchant_id`` with ``role`` (owner, developer or viewer);
    with ``permanent`` the password needs no change at first sign-in."""
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", param="role")
    pool_id, _ = pool()
    client = _client()
    client.admin_create_user(
        UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS", TemporaryPassword=temporary_password,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
                        {"Name": MERCHANT_CLAIM, "Value": merchant_id}, {"Name": ROLE_CLAIM, "Value": role}])
    if permanent:
        client.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=temporary_password, Permanent=True)
    return {"username": email, "merchant_id": merchant_id, "role": role, "password_is_temporary": not permanent}


def set_role(email: str, role: str, *, merchant_id: str | None = None) -> dict[str, Any]:
    """An operator changes a dashboard user's role (``tahsil users set-role``). The app client cannot write
    ``custom:role``, so neither can users: raising one's own role takes an operator. The new role applies within
    a minute (the session check reads ``GetUser``), and the user's sessions are signed out so none keeps a
    token minted under the old role. ``merchant_id``, when given, must be the user's (a guard against typos)."""
    from botocore.exceptions import ClientError

    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", param="role")
    pool_id, _ = pool()
    client = _client()
    try:
        user = client.admin_get_user(UserPoolId=pool_id, Username=email)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "UserNotFoundException":
            raise InvalidRequest(f"no dashboard user {email}", param="email") from None
        raise
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes") or []}
    if merchant_id and attributes.get(MERCHANT_CLAIM) != merchant_id:
        raise InvalidRequest(f"{email} is not a user of {merchant_id}", param="merchant_id")
    before = attributes.get(ROLE_CLAIM) if attributes.get(ROLE_CLAIM) in ROLES else "viewer"
    client.admin_update_user_attributes(UserPoolId=pool_id, Username=email,
                                        UserAttributes=[{"Name": ROLE_CLAIM, "Value": role}])
    client.admin_user_global_sign_out(UserPoolId=pool_id, Username=email)
    return {"username": email, "merchant_id": attributes.get(MERCHANT_CLAIM), "role": role, "previous_role": before,
            "signed_out": True}
