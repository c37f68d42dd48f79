"""Dashboard sign-in: Amazon Cognito ID tokens, verified here, and the session calls behind the sign-in form.

Merchant staff sign in to the dashboard with their Cognito user (never with an API key pasted
into a browser). The dashboard then calls the same /v1 API as an integration does, with
``Authorization: Bearer <Cognito ID token>`` and ``Tahsil-Mode: test|live``; ``tahsil.api.auth``
hands such a token to ``verify`` below before it would look up an API key.

What ``verify`` checks, all of it, on every request:
- the token is a compact JWS whose header says ``alg: RS256`` (``none``, ``HS256`` and any other
  algorithm are refused before a key is even looked up) and names a ``kid``;
- the signature, with the RSA public key of that ``kid`` from the user pool's JWKS
  (``https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json``; the local
  runtime's moto serves it at ``<AWS_ENDPOINT_URL>/<pool>/.well-known/jwks.json``). The JWKS
  URL comes from configuration, never from the token;
- ``iss`` is the configured pool, ``aud`` the configured app client, ``token_use`` is ``id``
  (an access token has no ``aud`` and no custom attributes), ``exp`` is in the future and
  ``iat`` not in the future (30 s of clock skew);
- ``custom:merchant_id`` is a merchant id. The attribute is immutable in the user pool and the
  app client cannot write it, so a user cannot move themselves to another merchant.

The JWKS is cached per process for an hour; an unknown ``kid`` (key rotation) fetches it again,
at most once a minute, so a flood of forged tokens cannot turn into a flood of fetches.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
import urllib.request
from typing import Any

from tahsil.kernel.config import settings
from tahsil.kernel.errors import InvalidRequest, TahsilError, Unauthenticated
from tahsil.store import aws

TOKEN_PATTERN = re.compile(r"^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
MERCHANT_CLAIM = "custom:merchant_id"
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


def verify(token: str, *, now: float | None = None) -> dict[str, Any]:
    """The claims of a valid dashboard ID token; otherwise a 401 that says as little as it can."""
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
    if claims.get("iss") != issuer(pool_id) or claims.get("token_use") != "id" or claims.get("aud") != client_id:
        raise invalid
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int) or iat > now + SKEW_S:
        raise invalid
    if exp <= now:
        raise SessionExpired("your dashboard session has expired: sign in again")
    if not MERCHANT_ID.match(str(claims.get(MERCHANT_CLAIM) or "")):
        raise Unauthenticated("this dashboard user is not linked to a merchant account (custom:merchant_id)")
    return claims


def user_label(claims: dict[str, Any]) -> str:
    """Who, for request logs and review records: the email, else the Cognito username."""
    return str(claims.get("email") or claims.get("cognito:username") or claims.get("sub"))


# ---------------------------------------------------------------- the sign-in form (POST /dashboard/session)


def _client() -> Any:
    return aws.client("cognito-idp")


def _session(answer: dict[str, Any], username: str) -> dict[str, Any]:
    result = answer.get("AuthenticationResult")
    if result:
        claims = json.loads(_b64(result["IdToken"].split(".")[1]))
        return {"object": "dashboard_session", "id_token": result["IdToken"], "token_type": "Bearer",
                "expires_in": int(result.get("ExpiresIn") or 3600), "email": claims.get("email") or username,
                "merchant_id": claims.get(MERCHANT_CLAIM)}
    challenge = answer.get("ChallengeName")
    if challenge == "NEW_PASSWORD_REQUIRED":
        return {"object": "dashboard_challenge", "challenge": challenge, "session": answer.get("Session"),
                "message": "choose a new password to finish signing in"}
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


# ---------------------------------------------------------------- operators (tahsil users create)


def create_user(email: str, merchant_id: str, *, temporary_password: str, permanent: bool = False) -> dict[str, Any]:
    """A dashboard user for ``merchant_id``; with ``permanent`` the password needs no change at first sign-in."""
    pool_id, _ = pool()
    client = _client()
    client.admin_create_user(
        UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS", TemporaryPassword=temporary_password,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
                        {"Name": MERCHANT_CLAIM, "Value": merchant_id}])
    if permanent:
        client.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=temporary_password, Permanent=True)
    return {"username": email, "merchant_id": merchant_id, "password_is_temporary": not permanent}
