"""What one request learned on its way through the Lambda handler (``tahsil.api.handler``), for its
answer's headers, ``respond`` (``tahsil.api.http``) and its request log record."""

from __future__ import annotations

import contextvars
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tahsil.api import ratelimit
from tahsil.kernel.principal import Principal


@dataclass
class RequestState:
    """What one request learned on its way through, for the answer's headers and its log record."""

    started: float
    received_at: dt.datetime
    audit: dict[str, Any] = field(default_factory=dict)  # key_id, merchant_id, mode, signature
    principal: Principal | None = None
    version: str | None = None  # the Tahsil-Version header, when sent
    rate: ratelimit.Decision | None = None
    rate_counted: bool = False


REQUEST: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar("tahsil_request", default=None)


def current() -> RequestState | None:
    return REQUEST.get()
