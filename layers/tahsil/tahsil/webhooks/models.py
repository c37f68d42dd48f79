"""Request models for webhook endpoints and events."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from tahsil.kernel.models import Strict

Url = Annotated[str, StringConstraints(min_length=8, max_length=2048),
                Field(description="https URL (http://localhost in test mode locally)")]
EventTypes = Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(min_length=1, max_length=50,
                       description='event types to send, or ["*"] for all')]


ApiVersion = Annotated[str, StringConstraints(max_length=64), Field(
    description="The API version events are rendered for (GET /v1/api-versions); 2025-12-01.tigris gives seed 002's "
                "payload. Default: the Tahsil-Version header, else the account's version")]


class EndpointCreate(Strict):
    url: Url
    enabled_events: EventTypes
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    api_version: ApiVersion | None = None


class EndpointUpdate(Strict):
    url: Url | None = None
    enabled_events: EventTypes | None = None
    enabled: bool | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    api_version: ApiVersion | None = None
    end_secret_overlap: bool | None = Field(default=None, description=(
        "true: stop signing with the secret replaced by the last rotation now, instead of when its overlap ends"))


class RedeliverRequest(Strict):
    endpoint_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class RecoverRequest(Strict):
    since: dt.datetime = Field(description="resend every delivery to this endpoint that failed since this time (ISO 8601)")


class EndpointDelivery(BaseModel):
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    status: str
    attempts: int
    round: int
    last_status_code: int | None
    last_attempt_at: str | None
    next_retry_at: str | None
    delivered_at: str | None
    created_at: str


class EndpointDeliveryList(BaseModel):
    object: str = "list"
    endpoint_id: str
    deliveries: list[EndpointDelivery]
    has_more: bool
    next_starting_after: str | None
