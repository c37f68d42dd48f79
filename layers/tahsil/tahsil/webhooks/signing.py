"""Endpoint secrets and signatures: a secret's making and sealing, and the headers that sign a delivery.

A secret is shown once and stored sealed (AES-GCM under KMS, ``tahsil.store.crypto``) in the endpoint's row.
Every delivery carries both header styles: Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``) and seed 002's ``X-Webhook-Signature``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from tahsil.kernel import clock
from tahsil.store import crypto

USER_AGENT = "Tahsil-Webhooks/1.0 (+https://www.standardwebhooks.com/)"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def seal(secret: str, endpoint_id: str) -> dict[str, str]:
    return crypto.secrets_vault.encrypt(secret, context=f"webhook/{endpoint_id}")


def unseal(sealed: dict[str, str], endpoint_id: str) -> str:
    return crypto.secrets_vault.decrypt(sealed, context=f"webhook/{endpoint_id}")


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def legacy_signature(secret: str, body: bytes) -> str:
    """Seed 002's ``X-Webhook-Signature``: hex HMAC-SHA256 of the body, keyed with the secret string."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def overlap_active(endpoint: dict[str, Any], now: dt.datetime) -> bool:
    until = endpoint.get("previous_secret_expires_at")
    return bool(endpoint.get("previous_secret_sealed") and until and clock.iso(now) < until)


def signed_headers(endpoint: dict[str, Any], msg_id: str, body: bytes, now: dt.datetime) -> dict[str, str]:
    """Both header styles. During a rotation's overlap, ``webhook-signature`` carries a signature
    under each secret, and seed 002's single ``X-Webhook-Signature`` stays under the previous
    secret, the one the receiver has, until the overlap ends (or the merchant ends it early)."""
    current = unseal(endpoint["secret_sealed"], endpoint["id"])
    secrets_in_use = [current]
    legacy_secret = current
    if overlap_active(endpoint, now):
        previous = unseal(endpoint["previous_secret_sealed"], endpoint["id"])
        secrets_in_use.append(previous)
        legacy_secret = previous
    timestamp = int(now.timestamp())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(standard_signature(s, msg_id, timestamp, body) for s in secrets_in_use),
        "X-Webhook-Signature": legacy_signature(legacy_secret, body),
    }
