"""Settings read from the environment once, failing fast when a variable is missing."""

from __future__ import annotations

import functools
import os

from pydantic import BaseModel, ValidationError


class Settings(BaseModel):
    payments_table: str
    idempotency_table: str
    credentials_table: str
    card_key_id: str
    pepper_secret_id: str
    # The customer-managed key for secrets (webhook signing secrets, payout details, connector credentials),
    # separate from the card key. Empty: the card key (a stack from before the split).
    secrets_key_id: str = ""
    public_base_url: str = ""
    stage: str = "dev"
    # Developer platform (tahsil.api.ratelimit, tahsil.api.requestlog). Empty table/queue names switch the
    # feature off with an error log (tools such as `tahsil merchants create` do not need them).
    rate_limit_table: str = ""
    request_logs_table: str = ""
    request_log_queue_url: str = ""
    rate_limit_payments_per_second: int = 20
    rate_limit_payments_per_hour: int = 10_000
    rate_limit_queries_per_second: int = 100
    rate_limit_public_per_second: int = 50
    rate_limit_notifications_per_second: int = 500  # processor notifications, per source IP (not browsers' budget)
    rate_limit_other_per_second: int = 100
    # The dashboard's Cognito user pool (tahsil.identity.cognito). Empty: dashboard sign-in is off.
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    # Owners must use TOTP MFA (tahsil.api.auth), in the prod stage only (template: RequireOwnerMfa).
    require_owner_mfa: bool = False


_ENV = {
    "payments_table": "PAYMENTS_TABLE",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "credentials_table": "CREDENTIALS_TABLE",
    "card_key_id": "CARD_KEY_ID",
    "pepper_secret_id": "PEPPER_SECRET_ID",
    "secrets_key_id": "SECRETS_KEY_ID",
    "public_base_url": "PUBLIC_BASE_URL",
    "stage": "STAGE",
    "rate_limit_table": "RATE_LIMIT_TABLE",
    "request_logs_table": "REQUEST_LOGS_TABLE",
    "request_log_queue_url": "REQUEST_LOG_QUEUE_URL",
    "rate_limit_payments_per_second": "RATE_LIMIT_PAYMENTS_PER_SECOND",
    "rate_limit_payments_per_hour": "RATE_LIMIT_PAYMENTS_PER_HOUR",
    "rate_limit_queries_per_second": "RATE_LIMIT_QUERIES_PER_SECOND",
    "rate_limit_public_per_second": "RATE_LIMIT_PUBLIC_PER_SECOND",
    "rate_limit_notifications_per_second": "RATE_LIMIT_NOTIFICATIONS_PER_SECOND",
    "rate_limit_other_per_second": "RATE_LIMIT_OTHER_PER_SECOND",
    "cognito_user_pool_id": "COGNITO_USER_POOL_ID",
    "cognito_client_id": "COGNITO_CLIENT_ID",
    "require_owner_mfa": "REQUIRE_OWNER_MFA",
}


@functools.cache
def settings() -> Settings:
    values = {field: os.environ[var] for field, var in _ENV.items() if var in os.environ}
    try:
        return Settings(**values)
    except ValidationError as exc:
        missing = [_ENV[str(e["loc"][0])] for e in exc.errors() if e["type"] == "missing"]
        raise RuntimeError(f"missing environment variables: {', '.join(missing)}") from exc
