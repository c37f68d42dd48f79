"""Request signing: per key, optional, and mandatory once enabled.

A signed request carries two headers::

    Tahsil-Timestamp: 1767225600
    Tahsil-Signature: v1=<hex HMAC-SHA256(signing secret, canonical request)>

and the canonical request is six lines joined by "\\n"::

    TAHSIL-HMAC-SHA256
    <timestamp, unix seconds>
    <METHOD>
    <path, from /v1/... or /public/..., without the query>
    <canonical query: pairs sorted, each key=value percent-encoded (RFC 3986), joined by &>
    <hex SHA-256 of the exact body bytes (of the empty string when there is no body)>

The timestamp must be within ±300 s of our clock. docs/request-signing.md has a worked
example; clients/python/tahsil_client.py signs requests this way (stdlib only).

The signing secret (``tss_...``) is derived from the pepper and a random nonce kept on the
key item, so it is stored neither in clear nor encrypted, and checking a signature costs
no extra call: the key item read by authentication holds everything needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import quote

from tahsil.kernel.errors import SignatureMismatch, SignatureRequired, SignatureTimestampInvalid
from tahsil.store import crypto

ALGORITHM = "TAHSIL-HMAC-SHA256"
TOLERANCE_S = 300
TIMESTAMP_HEADER = "Tahsil-Timestamp"
SIGNATURE_HEADER = "Tahsil-Signature"
_SIGNATURE = re.compile(r"^v1=([0-9a-f]{64})$")


def new_nonce() -> str:
    return secrets.token_hex(16)


def secret_for(key_id: str, nonce: str) -> str:
    """The signing secret of a key: shown to the merchant once, recomputed here on every check."""
    digest = crypto.keyed_digest("tahsil/request-signing/v1", f"{key_id}:{nonce}")
    return "tss_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))


def canonical_request(method: str, path: str, query: Iterable[tuple[str, str]], timestamp: str, body: bytes) -> str:
    return "\n".join([ALGORITHM, timestamp, method.upper(), path, canonical_query(query), hashlib.sha256(body).hexdigest()])


def sign(secret: str, canonical: str) -> str:
    return "v1=" + hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


class Check(NamedTuple):
    """The outcome of one signature check, as request logs and the console show it."""

    outcome: str  # "passed" | "denied"
    reason: str | None = None  # "missing" | "bad_timestamp" | "clock_drift" | "mismatch" | "malformed"
    drift_s: int | None = None  # our clock minus the request's timestamp, in seconds

    def record(self) -> dict[str, object]:
        return {"outcome": self.outcome, "reason": self.reason, "drift_s": self.drift_s}


def verify(secret: str, *, method: str, path: str, query: Iterable[tuple[str, str]], body: bytes,
           timestamp: str | None, signature: str | None, now: float) -> Check:
    if not timestamp or not signature:
        return Check("denied", "missing")
    if not timestamp.strip().isdigit() or len(timestamp.strip()) > 12:
        return Check("denied", "bad_timestamp")
    stamp = timestamp.strip()
    drift = int(now) - int(stamp)
    if abs(drift) > TOLERANCE_S:
        return Check("denied", "clock_drift", drift)
    found = _SIGNATURE.match(signature.strip())
    if not found:
        return Check("denied", "malformed", drift)
    expected = sign(secret, canonical_request(method, path, query, stamp, body))
    if not hmac.compare_digest(expected, "v1=" + found.group(1)):
        return Check("denied", "mismatch", drift)
    return Check("passed", None, drift)


def check_key(item: dict[str, Any], *, method: str, path: str, query: Iterable[tuple[str, str]], body: bytes,
              headers: dict[str, str], now: float) -> Check:
    """The signature check of a request made with the key row ``item`` (``headers`` lower-cased)."""
    return verify(secret_for(item["key_id"], item["signing"]["nonce"]), method=method, path=path, query=query,
                  body=body, timestamp=headers.get(TIMESTAMP_HEADER.lower()),
                  signature=headers.get(SIGNATURE_HEADER.lower()), now=now)


def enforce(check: Check) -> None:
    """Nothing when the check passed; else the 401 that names what failed."""
    if check.outcome == "passed":
        return
    if check.reason == "missing":
        raise SignatureRequired("this API key requires signed requests: send Tahsil-Timestamp and Tahsil-Signature",
                                param=SIGNATURE_HEADER)
    if check.reason == "bad_timestamp":
        raise SignatureTimestampInvalid("Tahsil-Timestamp must be unix seconds", param=TIMESTAMP_HEADER)
    if check.reason == "clock_drift":
        raise SignatureTimestampInvalid(
            f"Tahsil-Timestamp is {abs(check.drift_s or 0)} s {'behind' if (check.drift_s or 0) > 0 else 'ahead of'} "
            f"our clock; at most {TOLERANCE_S} s of drift is tolerated",
            param=TIMESTAMP_HEADER, drift_s=check.drift_s)
    if check.reason == "malformed":
        raise SignatureMismatch("Tahsil-Signature must be v1=<64 hex digits>", param=SIGNATURE_HEADER)
    raise SignatureMismatch("Tahsil-Signature does not match the request (method, path, query, timestamp and body)",
                            param=SIGNATURE_HEADER)
