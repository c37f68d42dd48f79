"""Request and response models of identity: API keys, the account's API version pin, the dashboard's sign-in form."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, StringConstraints, field_validator

from tahsil.kernel.models import Strict, worded
from tahsil.kernel.principal import SCOPES
from tahsil.kernel.versions import NAMES

# ---------------------------------------------------------------- API keys and versions

MAX_ALLOWLIST = 50
MAX_ROLL_GRACE_S = 24 * 3600


def cidr(entry: str) -> str:
    """An IPv4 or IPv6 CIDR (a bare address is a /32 or /128), normalized; the error names the entry."""
    try:
        network = ipaddress.ip_network(entry.strip(), strict=True)
    except ValueError as exc:
        reason = "has host bits set" if "host bits" in str(exc) else "is not an IPv4 or IPv6 address or CIDR"
        raise ValueError(f"{entry!r} {reason}") from None
    return str(network)


def scope(value: str) -> str:
    if value not in SCOPES:
        raise ValueError(f"unknown scope {value!r}; known scopes: {', '.join(SCOPES)}")
    return value


Cidr = Annotated[str, AfterValidator(cidr)]
Scope = Annotated[str, AfterValidator(scope)]


class ApiKeyCreate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    mode: Literal["test", "live"] | None = Field(None, description="defaults to the calling key's mode")
    type: Literal["secret", "publishable"] = "secret"
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(SCOPES))]
    ip_allowlist: Annotated[list[Cidr], Field(max_length=MAX_ALLOWLIST)] = Field(default_factory=list)
    require_signing: bool = False

    @field_validator("scopes", "ip_allowlist")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ApiKeyRoll(Strict):
    expires_in: Annotated[int, Field(ge=0, le=MAX_ROLL_GRACE_S,
                                     description="seconds the old key keeps working (0, the default: it stops now)")] = 0


class ApiVersionUpdate(Strict):
    api_version: str

    @field_validator("api_version")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in NAMES:
            raise ValueError(f"unknown API version {value!r}; known versions: {', '.join(NAMES)}")
        return value


# ---------------------------------------------------------------- response shapes (OpenAPI)


class ApiKey(BaseModel):
    id: str
    object: str = "api_key"
    name: str
    mode: str
    type: str
    status: str
    prefix: str
    last4: str
    scopes: list[str]
    ip_allowlist: list[str]
    require_signing: bool
    api_version: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None
    rolled_to: str | None
    secret: str | None = Field(None, description="only in the answer that creates or rolls the key")
    signing_secret: str | None = Field(None, description="only when the key requires signing, in the same answers")


class ApiKeyList(BaseModel):
    object: str = "list"
    api_keys: list[ApiKey]


class ApiVersionEntry(BaseModel):
    version: str
    released: str
    status: str
    summary: str
    current: bool
    changes: list[dict[str, str]]


class ApiVersions(BaseModel):
    object: str = "list"
    latest: str
    pinned: str | None
    upgrade_available: bool
    versions: list[ApiVersionEntry]


class ApiVersionPin(BaseModel):
    object: str = "account"
    api_version: str
    previous_version: str
    keys_updated: int


# ---------------------------------------------------------------- the dashboard's sign-in form


_MFA_CODE = r"^[0-9]{6}$"


# POST /dashboard/session (tahsil.identity.sessions.handle); no docstring: it would become the schema's description.
class SessionCreate(Strict):
    action: Literal["sign_in", "new_password", "mfa", "refresh", "sign_out", "totp_setup", "totp_verify"] | None = None
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)] | None = None
    password: SecretStr | None = None
    session: Annotated[str, StringConstraints(max_length=4096)] | None = None
    new_password: SecretStr | None = None
    mfa_code: Annotated[str, StringConstraints(pattern=_MFA_CODE),
                        worded(_MFA_CODE, "must be the 6 digits your authenticator app shows, such as 123456")] | None = None
    refresh_token: Annotated[SecretStr, StringConstraints(max_length=8192)] | None = None
