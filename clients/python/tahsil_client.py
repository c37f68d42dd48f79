"""A small Tahsil client that signs requests. Standard library only: copy this file into your project.

    from tahsil_client import TahsilClient

    client = TahsilClient("https://api.example.com", api_key="sk_live_...", signing_secret="tss_...")
    status, headers, body = client.request("POST", "/v1/payments/authorize", json_body={...},
                                           idempotency_key="order-12345-auth")

Signing (docs/request-signing.md): two headers,

    Tahsil-Timestamp: <unix seconds>
    Tahsil-Signature: v1=<hex HMAC-SHA256(signing secret, canonical request)>

where the canonical request is these six lines joined by "\\n":

    TAHSIL-HMAC-SHA256
    <timestamp>
    <METHOD>
    <path, from /v1/... or /public/..., without the query>
    <query pairs sorted, key=value percent-encoded (RFC 3986), joined by &>
    <hex SHA-256 of the exact body bytes>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "TAHSIL-HMAC-SHA256"


def api_path(path: str) -> str:
    """The path as the API sees it: from /v1/ or /public/ on (a stage or base-path prefix is dropped)."""
    for marker in ("/v1/", "/public/"):
        at = path.find(marker)
        if at >= 0:
            return path[at:]
    return path


def canonical_request(method: str, path_and_query: str, timestamp: int | str, body: bytes) -> str:
    parts = urlsplit(path_and_query)
    pairs = sorted(parse_qsl(parts.query, keep_blank_values=True))
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    return "\n".join([ALGORITHM, str(timestamp), method.upper(), api_path(parts.path), query,
                      hashlib.sha256(body).hexdigest()])


def signature(secret: str, method: str, path_and_query: str, timestamp: int | str, body: bytes) -> str:
    canonical = canonical_request(method, path_and_query, timestamp, body)
    return "v1=" + hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def signed_headers(secret: str, method: str, path_and_query: str, body: bytes = b"",
                   timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return {"Tahsil-Timestamp": str(stamp), "Tahsil-Signature": signature(secret, method, path_and_query, stamp, body)}


class TahsilClient:
    def __init__(self, base_url: str, api_key: str, *, signing_secret: str | None = None,
                 api_version: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.signing_secret = signing_secret
        self.api_version = api_version
        self.timeout = timeout

    def request(self, method: str, path: str, *, json_body: Any = None, idempotency_key: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """Send one request; returns (status, headers, parsed JSON body or None). Never raises on an HTTP error."""
        body = b"" if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        url = self.base_url + path
        sent = {"X-API-Key": self.api_key, "Accept": "application/json", **(headers or {})}
        if json_body is not None:
            sent["Content-Type"] = "application/json"
        if idempotency_key:
            sent["Idempotency-Key"] = idempotency_key
        if self.api_version:
            sent["Tahsil-Version"] = self.api_version
        if self.signing_secret:
            split = urlsplit(url)
            sent.update(signed_headers(self.signing_secret, method, split.path + ("?" + split.query if split.query else ""),
                                       body))
        request = urllib.request.Request(url, data=body if json_body is not None else None, headers=sent,
                                         method=method.upper())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - the caller's base URL
                status, got, raw = answer.status, dict(answer.headers.items()), answer.read()
        except urllib.error.HTTPError as exc:
            status, got, raw = exc.code, dict(exc.headers.items()), exc.read()
        return status, got, (json.loads(raw) if raw else None)
