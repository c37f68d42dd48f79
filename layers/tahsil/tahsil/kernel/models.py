"""Model vocabulary shared by every package: the strict request base and the response envelopes.

Each context keeps its own request and response models in its ``models.py``; what they all use
lives here, so no domain package needs the HTTP layer to describe its answers.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

T = TypeVar("T")


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped: a typo must not go unnoticed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _iso_date_time(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value.strip()):
        raise ValueError("must be an ISO 8601 date-time with a time zone, e.g. 2026-01-31T12:00:00Z")
    return value.strip()


IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_date_time)]
"""A date-time as the spec writes it (ISO 8601 / RFC 3339, with its offset), never a Unix time ("0.5")."""


def worded(pattern: str, expected: str) -> Any:
    """Refuse a string that does not match ``pattern`` with ``expected`` ("must be an e-mail address such as
    name@example.com"), never with the regular expression itself. Put it beside
    ``StringConstraints(pattern=pattern)``, which keeps the pattern in the OpenAPI document; this check runs
    first (a before-validator), on the value as it will be stripped."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.search(value.strip()):
            raise ValueError(expected)
        return value

    return BeforeValidator(check)


EMAIL_FORM = "must be an e-mail address such as name@example.com"
CURRENCY_FORM = "must be a three-letter ISO 4217 currency code such as USD"


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    data: T


class MessageEnvelope(BaseModel, Generic[T]):
    """The envelope with seed 002's human-readable ``message`` beside ``data`` (e.g. a cancel)."""

    success: bool = True
    message: str
    data: T


class Error(BaseModel):
    code: str
    message: str
    param: str | None
    request_id: str | None


class ErrorEnvelope(BaseModel):
    success: bool = False
    error: Error


def described(model: type[BaseModel], status: int, errors: dict[int, str], *, message: bool = False) -> dict[int, Any]:
    """Powertools route ``responses``: the success envelope at ``status`` and the error envelope per code."""
    envelope = MessageEnvelope[model] if message else Envelope[model]  # type: ignore[valid-type]
    out: dict[int, Any] = {status: {"description": {200: "OK", 201: "Created", 202: "Accepted"}[status],
                                    "content": {"application/json": {"model": envelope}}}}
    for code, text in errors.items():
        out[code] = {"description": text, "content": {"application/json": {"model": ErrorEnvelope}}}
    return out
