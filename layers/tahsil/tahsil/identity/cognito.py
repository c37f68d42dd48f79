"""Dashboard sessions: Amazon Cognito access tokens, verified here (the sign-in form is ``tahsil.identity.sessions``).

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
  the app client cannot write it) picks the user's scopes (``tahsil.identity.roles.ROLE_SCOPES``).

The JWKS is cached per process for an hour; an unknown ``kid`` (key rotation) fetches it again,
at most once a minute, so a flood of forged tokens cannot turn into a flood of fetches.
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
import urllib.request
from typing import Any

from tahsil.identity.roles import ROLES
from tahsil.kernel.config import settings
from tahsil.kernel.errors import Forbidden, TahsilError, Unauthenticated
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


def b64url(segment: str) -> bytes:
    """A base64url JWT segment, its padding restored."""
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

                n = int.from_bytes(b64url(jwk["n"]), "big")
                e = int.from_bytes(b64url(jwk["e"]), "big")
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
        answer = client().get_user(AccessToken=token)
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
        header = json.loads(b64url(head_b64))
        claims = json.loads(b64url(body_b64))
        signature = b64url(sig_b64)
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


def client() -> Any:
    """The Cognito user pool's client (``cognito-idp``)."""
    return aws.client("cognito-idp")


def session_id(token: str) -> str:
    """What names a session's MFA record: the token's SHA-256 (only its holder can name it; the token is not stored)."""
    return _digest(token)

