"""Response models of the HTTP layer's own routes: request logs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class RequestLog(BaseModel):
    id: str
    object: str = "request_log"
    method: str
    path: str
    route: str
    status: int
    latency_ms: int
    rate_limit: dict[str, Any]
    signature: dict[str, Any]
    body_sha256: str
    idempotency_key: str | None
    key_id: str | None
    source_ip: str | None
    api_version: str
    error_code: str | None
    user: str | None = None
    created_at: str


class RequestLogList(BaseModel):
    object: str = "list"
    request_logs: list[RequestLog]
    has_more: bool
    next_cursor: str | None
