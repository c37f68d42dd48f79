"""Model vocabulary shared by every package: the strict request base and the response envelopes.

Each context keeps its own request and response models in its ``models.py``; what they all use
lives here, so no domain package needs the HTTP layer to describe its answers.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped: a typo must not go unnoticed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
    out: dict[int, Any] = {status: {"description": "OK" if status == 200 else "Created",
                                    "content": {"application/json": {"model": envelope}}}}
    for code, text in errors.items():
        out[code] = {"description": text, "content": {"application/json": {"model": ErrorEnvelope}}}
    return out
