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
    public_base_url: str = ""
    stage: str = "dev"


_ENV = {
    "payments_table": "PAYMENTS_TABLE",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "credentials_table": "CREDENTIALS_TABLE",
    "card_key_id": "CARD_KEY_ID",
    "pepper_secret_id": "PEPPER_SECRET_ID",
    "public_base_url": "PUBLIC_BASE_URL",
    "stage": "STAGE",
}


@functools.cache
def settings() -> Settings:
    values = {field: os.environ[var] for field, var in _ENV.items() if var in os.environ}
    try:
        return Settings(**values)
    except ValidationError as exc:
        missing = [_ENV[str(e["loc"][0])] for e in exc.errors() if e["type"] == "missing"]
        raise RuntimeError(f"missing environment variables: {', '.join(missing)}") from exc
