"""Request and response models for webhook endpoints and events."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from tahsil.kernel.models import IsoDateTime, Strict

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
    since: IsoDateTime = Field(description="resend every delivery to this endpoint that failed since this time (ISO 8601)")


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


# ------------------------------------------------------------------ answers (for the OpenAPI document)


class WebhookEndpoint(BaseModel):
    id: str
    object: str = "webhook_endpoint"
    name: str | None
    url: str
    description: str | None
    enabled_events: list[str]
    status: str = Field(description="enabled, disabled (by the merchant or after failing for days)")
    disabled_reason: str | None
    livemode: bool
    api_version: str | None
    secret_rotated_at: str | None
    created_at: str
    updated_at: str | None


class CreatedWebhookEndpoint(WebhookEndpoint):
    secret: str = Field(description="the signing secret, shown once")


class RotatedWebhookEndpoint(CreatedWebhookEndpoint):
    previous_secret_expires_at: str = Field(description="the old secret keeps signing beside the new one until then")


class WebhookEndpointList(BaseModel):
    webhook_endpoints: list[WebhookEndpoint]


class DeletedWebhookEndpoint(BaseModel):
    id: str
    object: str = "webhook_endpoint"
    deleted: bool


class EventDeliveryState(BaseModel):
    status: str = Field(description="pending, delivered, failed or no_endpoints")
    endpoints: int | None
    finished: int
    failed: int


class Event(BaseModel):
    id: str
    object: str = "event"
    type: str
    created: str
    livemode: bool
    api_version: str | None
    sequence: int
    data: dict[str, Any] = Field(description="object: the object as the API renders it; previous_attributes")
    request: dict[str, Any] = Field(description="id and idempotency_key of the request that caused it")
    delivery: EventDeliveryState


class EventList(BaseModel):
    object: str = "list"
    events: list[Event]
    has_more: bool
    limit: int
    next_starting_after: str | None


class DeliveryAttempt(BaseModel):
    round: int | None
    number: int | None
    at: str | None
    url: str | None
    status_code: int | None
    latency_ms: int | None
    error_class: str | None
    response_prefix: str | None
    next_retry_at: str | None


class EventDelivery(BaseModel):
    endpoint_id: str
    url: str
    status: str
    attempts: int
    round: int
    next_retry_at: str | None
    delivered_at: str | None
    last_status_code: int | None
    history: list[DeliveryAttempt]


class EventDeliveries(BaseModel):
    event_id: str
    deliveries: list[EventDelivery]


class Redelivery(BaseModel):
    event_id: str
    redelivering_to: list[str]


class Recovery(BaseModel):
    endpoint_id: str
    since: str
    redelivered_events: list[str]
