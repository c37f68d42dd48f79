"""Secrets and card data.

- API keys are stored only as HMAC-SHA256 under a key derived from the pepper, a random
  secret held in Secrets Manager (never in the tables).
- Card numbers are AES-256-GCM encrypted with a data key from KMS (envelope encryption);
  the wrapped data key is stored beside the ciphertext. Like the AWS Encryption SDK's
  caching materials manager, a data key is reused for at most 5 minutes or 10,000 cards,
  so an authorization costs no KMS call on the hot path.
- A card's fingerprint is a keyed hash (PCI DSS: hashes of a PAN must be keyed).
- Two customer-managed keys, two vaults: ``vault`` seals card numbers only (CARD_KEY_ID); ``secrets_vault``
  seals webhook signing secrets, payout details and connector credentials (SECRETS_KEY_ID). Code that
  delivers webhooks may open secrets and never card numbers: its role has no use of the card key.
- A failed KMS call counts the ``CardVaultErrors`` metric (the CardVaultErrors alarm) before it raises.
- Data keys for a merchant's values carry the KMS encryption context ``{"tahsil:merchant": <id>}`` (the
  card key's policy requires it): CloudTrail names the merchant of every data key, and a wrapped key
  opens only for the merchant it was made for. Each merchant has its own cached data key.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tahsil.kernel.config import settings
from tahsil.kernel.telemetry import metrics
from tahsil.store import aws


@functools.cache
def _pepper() -> bytes:
    secret = aws.client("secretsmanager").get_secret_value(SecretId=settings().pepper_secret_id)
    value = secret["SecretString"].encode()
    if len(value) < 32:
        raise RuntimeError("the pepper secret must hold at least 32 characters")
    return value


@functools.cache
def _subkey(purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(_pepper())


def hash_secret(secret: str) -> str:
    """Keyed hash of an API key or client secret; what the tables store instead of it."""
    return hmac.new(_subkey("tahsil/api-key/v1"), secret.encode(), hashlib.sha256).hexdigest()


def same_secret(stored_hash: str, presented: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_secret(presented))


def keyed_digest(purpose: str, message: str) -> bytes:
    """HMAC-SHA256 of ``message`` under the pepper's subkey for ``purpose`` (domain-separated).

    Request-signing secrets are derived this way from a random nonce stored on the key, so
    the table holds neither the secret nor a ciphertext of it, and checking a signature
    costs no KMS call.
    """
    return hmac.new(_subkey(purpose), message.encode(), hashlib.sha256).digest()


def card_fingerprint(pan: str) -> str:
    return hmac.new(_subkey("tahsil/card-fingerprint/v1"), pan.encode(), hashlib.sha256).hexdigest()[:32]


def card_fingerprint_bytes(pan: str) -> bytes:
    """The same fingerprint as 16 raw bytes: how a payment item stores it (a binary attribute, half the hex)."""
    return bytes.fromhex(card_fingerprint(pan))


@dataclass
class _DataKey:
    plaintext: bytes
    wrapped: str
    created: float
    uses: int = 0


MERCHANT_CONTEXT = "tahsil:merchant"


class CardVault:
    MAX_AGE_S = 300
    MAX_USES = 10_000

    def __init__(self, purpose: str = "card") -> None:
        self.purpose = purpose  # "card" (CARD_KEY_ID) or "secrets" (SECRETS_KEY_ID, else the card key)
        self._lock = threading.Lock()
        self._keys: dict[str | None, _DataKey] = {}  # per merchant (None: values of no merchant)
        self._unwrapped: dict[str, bytes] = {}

    def key_id(self) -> str:
        if self.purpose == "secrets":
            return settings().secrets_key_id or settings().card_key_id
        return settings().card_key_id

    def _kms(self, operation: str, **args: object) -> dict:
        try:
            return getattr(aws.client("kms"), operation)(**args)
        except Exception:
            metrics.add_metric(name="CardVaultErrors", unit="Count", value=1)
            raise

    @staticmethod
    def _kms_context(merchant: str | None) -> dict[str, dict[str, str]]:
        return {"EncryptionContext": {MERCHANT_CONTEXT: merchant}} if merchant else {}

    def _data_key(self, merchant: str | None) -> _DataKey:
        with self._lock:
            key = self._keys.get(merchant)
            if key is None or key.uses >= self.MAX_USES or time.monotonic() - key.created > self.MAX_AGE_S:
                answer = self._kms("generate_data_key", KeyId=self.key_id(), KeySpec="AES_256", **self._kms_context(merchant))
                key = _DataKey(answer["Plaintext"], base64.b64encode(answer["CiphertextBlob"]).decode(), time.monotonic())
                if len(self._keys) >= 1024:
                    self._keys.clear()
                self._keys[merchant] = key
                self._unwrapped[key.wrapped] = key.plaintext
            key.uses += 1
            return key

    def encrypt(self, pan: str, context: str, merchant: str | None = None) -> dict[str, str]:
        key = self._data_key(merchant)
        iv = os.urandom(12)
        ciphertext = AESGCM(key.plaintext).encrypt(iv, pan.encode(), context.encode())
        sealed = {
            "alg": "AES-256-GCM",
            "wrapped_key": key.wrapped,
            "iv": base64.b64encode(iv).decode(),
            "ciphertext": base64.b64encode(ciphertext).decode(),
        }
        if merchant:
            sealed["merchant"] = merchant  # the data key's KMS encryption context
        return sealed

    # The compact sealed form (a card on a payment item, one binary attribute instead of a map of base64
    # strings): version byte 1, the wrapped data key's length (2 bytes, big-endian), the wrapped key
    # (KMS's CiphertextBlob as is), the 12-byte IV, then the AES-256-GCM ciphertext with its tag. The
    # KMS encryption context's merchant is not repeated inside: the item's merchant_id is passed to open it.
    COMPACT_VERSION = 1

    def seal(self, pan: str, context: str, merchant: str) -> bytes:
        """``encrypt`` in the compact binary form (same key, AAD and KMS context)."""
        key = self._data_key(merchant)
        iv = os.urandom(12)
        wrapped = base64.b64decode(key.wrapped)
        ciphertext = AESGCM(key.plaintext).encrypt(iv, pan.encode(), context.encode())
        return bytes([self.COMPACT_VERSION]) + len(wrapped).to_bytes(2, "big") + wrapped + iv + ciphertext

    def unseal(self, sealed: object, context: str, merchant: str) -> str:
        """Open a value from ``seal`` (bytes, or boto3's ``Binary``) or, for items written before it, from ``encrypt``."""
        if isinstance(sealed, dict):
            return self.decrypt(sealed, context)
        raw = bytes(getattr(sealed, "value", sealed))  # type: ignore[arg-type]
        if not raw or raw[0] != self.COMPACT_VERSION:
            raise ValueError("unknown sealed value format")
        size = int.from_bytes(raw[1:3], "big")
        wrapped, rest = raw[3:3 + size], raw[3 + size:]
        return self.decrypt({"wrapped_key": base64.b64encode(wrapped).decode(), "iv": base64.b64encode(rest[:12]).decode(),
                             "ciphertext": base64.b64encode(rest[12:]).decode(), "merchant": merchant}, context)

    def decrypt(self, sealed: dict[str, str], context: str) -> str:
        """Open a sealed value. Card numbers: operators' tooling only, no API returns one.

        Unwrapped data keys are kept per process (at most 256), so webhook deliveries
        that open the same endpoint's secret do not call KMS each time.
        """
        wrapped = sealed["wrapped_key"]
        with self._lock:
            plaintext_key = self._unwrapped.get(wrapped)
        if plaintext_key is None:
            plaintext_key = self._kms("decrypt", CiphertextBlob=base64.b64decode(wrapped), KeyId=self.key_id(),
                                      **self._kms_context(sealed.get("merchant")))["Plaintext"]
            with self._lock:
                if len(self._unwrapped) >= 256:
                    self._unwrapped.clear()
                self._unwrapped[wrapped] = plaintext_key
        data = AESGCM(plaintext_key).decrypt(
            base64.b64decode(sealed["iv"]), base64.b64decode(sealed["ciphertext"]), context.encode()
        )
        return data.decode()


vault = CardVault("card")
secrets_vault = CardVault("secrets")
