"""Which connector a merchant uses, set by an operator (``tahsil merchants connector``).

- Test mode always uses the simulator; nothing can change that.
- Live mode uses the connector an operator configured, or none: a live payment without one is
  refused (``NoLiveConnector``), never approved. The simulator is never a live connector.
- Non-secret settings (connector name, Adyen merchant account, environment, live URL prefix)
  live in the credentials table (``MER#<id>`` / ``CONNECTOR#<mode>``). Credentials (API key,
  notification HMAC key) live in one Secrets Manager secret per merchant connector, encrypted
  under the customer-managed key ``SecretsKey`` (the secrets key, never the card key); never in DynamoDB, environment or logs.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from tahsil.connectors.adyen import AdyenConnector
from tahsil.connectors.base import Connector, ConnectorError
from tahsil.kernel import clock
from tahsil.kernel.errors import InvalidRequest, NotFound
from tahsil.store import aws, dal

LIVE_CONNECTORS = ("adyen",)
SECRET_CACHE_SECONDS = 300
_cache: dict[str, tuple[float, dict[str, str]]] = {}
_lock = threading.Lock()


def secret_name(merchant_id: str, mode: str) -> str:
    return f"{os.environ.get('CONNECTOR_SECRET_PREFIX', 'tahsil/connectors/')}{merchant_id}/{mode}"


def _row_key(merchant_id: str, mode: str) -> tuple[str, str]:
    return f"MER#{merchant_id}", f"CONNECTOR#{mode}"


def load(merchant_id: str, mode: str) -> dict[str, Any] | None:
    pk, sk = _row_key(merchant_id, mode)
    return dal.get(dal.credentials_table(), pk, sk)


def public_view(row: dict[str, Any] | None, merchant_id: str, mode: str) -> dict[str, Any]:
    if row is None:
        return {"merchant_id": merchant_id, "mode": mode,
                "connector": "simulator" if mode == "test" else None}
    return {k: row.get(k) for k in ("merchant_id", "mode", "connector", "merchant_account", "environment",
                                    "live_url_prefix", "base_url", "secret_id", "updated_at", "updated_by")}


def _local_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or parts.username or parts.password:
        raise InvalidRequest("base_url is only for a local fake Adyen: http://127.0.0.1:<port> or http://localhost:<port>",
                             param="base_url")
    return value.rstrip("/")


def configure(merchant_id: str, *, mode: str, connector: str, operator: str, merchant_account: str | None = None,
              api_key: str | None = None, hmac_key: str | None = None, environment: str = "test",
              live_url_prefix: str | None = None, base_url: str | None = None) -> dict[str, Any]:
    """Set a merchant's connector for ``mode``; returns its settings (never the credentials)."""
    if dal.get(dal.credentials_table(), f"MER#{merchant_id}", "MER") is None:
        raise NotFound(f"no merchant {merchant_id}", param="merchant_id")
    if mode == "test":
        raise InvalidRequest("test mode always uses the simulator; connectors are set for live mode", param="mode")
    if mode != "live":
        raise InvalidRequest("mode must be live", param="mode")
    if connector not in LIVE_CONNECTORS:
        raise InvalidRequest(f"live connector must be one of {', '.join(LIVE_CONNECTORS)} (the simulator never takes "
                             "live payments)", param="connector")
    if not merchant_account or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,80}", merchant_account):
        raise InvalidRequest("merchant_account must be your Adyen merchant account code", param="merchant_account")
    if not api_key or len(api_key) < 8:
        raise InvalidRequest("api_key (Adyen API key) is required", param="api_key")
    if not hmac_key or not re.fullmatch(r"(?:[0-9A-Fa-f]{2}){16,64}", hmac_key):
        raise InvalidRequest("hmac_key must be the notification HMAC key in hex, as Adyen's Customer Area shows it",
                             param="hmac_key")
    if environment not in ("test", "live"):
        raise InvalidRequest("environment must be test or live (Adyen's platform)", param="environment")
    if base_url:
        base_url = _local_url(base_url)
    elif environment == "live" and not (live_url_prefix and re.fullmatch(r"[a-z0-9\-]{4,100}", live_url_prefix)):
        raise InvalidRequest("a live Adyen account needs live_url_prefix ([random]-[company name], from the Customer Area)",
                             param="live_url_prefix")
    name = secret_name(merchant_id, mode)
    secret = json.dumps({"api_key": api_key, "hmac_key": hmac_key.upper()})
    sm = aws.client("secretsmanager")
    try:
        arn = sm.create_secret(Name=name, KmsKeyId=os.environ.get("CONNECTOR_SECRETS_KEY_ID") or "alias/aws/secretsmanager",
                               SecretString=secret, Description=f"Tahsil {connector} credentials for {merchant_id} ({mode})",
                               )["ARN"]
    except sm.exceptions.ResourceExistsException:
        arn = sm.put_secret_value(SecretId=name, SecretString=secret)["ARN"]
    with _lock:
        _cache.pop(name, None)
    pk, sk = _row_key(merchant_id, mode)
    row = {"pk": pk, "sk": sk, "merchant_id": merchant_id, "mode": mode, "connector": connector,
           "merchant_account": merchant_account, "environment": environment, "live_url_prefix": live_url_prefix,
           "base_url": base_url, "secret_id": arn, "updated_at": clock.iso(clock.now()), "updated_by": operator}
    dal.put(dal.credentials_table(), row)
    return public_view(row, merchant_id, mode)


def remove(merchant_id: str, mode: str) -> dict[str, Any]:
    """Take the live connector away: live payments are refused again. The secret is scheduled for deletion."""
    row = load(merchant_id, mode)
    if row is None:
        raise NotFound(f"merchant {merchant_id} has no {mode} connector", param="merchant_id")
    aws.client("dynamodb").delete_item(TableName=dal.credentials_table(), Key={"pk": {"S": row["pk"]}, "sk": {"S": row["sk"]}})
    try:
        aws.client("secretsmanager").delete_secret(SecretId=row["secret_id"], RecoveryWindowInDays=7)
    except Exception:  # noqa: BLE001 - the row is gone, so the secret is unused; report and carry on
        pass
    with _lock:
        _cache.pop(secret_name(merchant_id, mode), None)
    return public_view(None, merchant_id, mode)


def credentials(row: dict[str, Any]) -> dict[str, str]:
    """The connector's credentials, cached in the process for 5 minutes (one Secrets Manager call per cold start)."""
    name = secret_name(row["merchant_id"], row["mode"])
    now = time.monotonic()
    with _lock:
        hit = _cache.get(name)
        if hit and now - hit[0] < SECRET_CACHE_SECONDS:
            return hit[1]
    value = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=row["secret_id"])["SecretString"])
    with _lock:
        _cache[name] = (now, value)
    return value


def build(row: dict[str, Any]) -> Connector:
    if row.get("connector") != "adyen":
        raise ConnectorError(f"unknown connector {row.get('connector')!r}")
    creds = credentials(row)
    return AdyenConnector(api_key=creds["api_key"], merchant_account=row["merchant_account"],
                          environment=row.get("environment") or "test", live_url_prefix=row.get("live_url_prefix"),
                          base_url=row.get("base_url"))


def hmac_key(merchant_id: str, mode: str) -> str | None:
    row = load(merchant_id, mode)
    return credentials(row)["hmac_key"] if row else None


def reset_cache() -> None:
    with _lock:
        _cache.clear()
