"""Credential guards (seed 000): rules on credential rows, enforced where rows are written.

``tahsil.store.dal`` calls ``enforce_put`` / ``enforce_update`` before every write to the
CredentialsTable, so no code path above the store can skip them; the rules import nothing of
Tahsil but the kernel and the codec, which keeps the store free of cycles.

A ``block`` rule raises ``GuardViolation`` (the write never happens; to a caller it is a 500,
because API input is validated long before a row is built), a ``warn`` rule logs a warning with
a ``CredentialGuardWarnings`` metric and lets the write through.

The report of rows that break a rule (written before it existed) is ``tahsil.console.guards``.

| rule                          | rows             | type   | enforcement |
|-------------------------------|------------------|--------|-------------|
| api_keys_no_plaintext_secret  | KEY# (api keys)  | check  | block       |
| api_keys_unique_hash          | KEY#             | unique | block       |
| webhook_secrets_hashed        | WHE# (endpoints) | check  | block       |
| credential_scope_required     | KEY#             | check  | block       |
| ip_allowlist_valid_cidr       | KEY#             | check  | warn        |
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from tahsil.kernel.principal import SCOPES
from tahsil.kernel.telemetry import logger, metrics
from tahsil.store import codec

_KEY_VALUE = re.compile(r"(sk|pk)_(test|live)_[A-Za-z0-9]{16,}")
_SIGNING_VALUE = re.compile(r"tss_[A-Za-z0-9_-]{20,}")
_WEBHOOK_VALUE = re.compile(r"whsec_[A-Za-z0-9+/=]{16,}")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
KEY_PLAINTEXT_NAMES = frozenset({"secret", "key", "raw_key", "api_key", "plaintext", "secret_key", "signing_secret",
                                 "token"})
WEBHOOK_PLAINTEXT_NAMES = frozenset({"secret", "signing_secret", "previous_secret", "plaintext", "secret_plain",
                                     "webhook_secret"})


class GuardViolation(RuntimeError):
    def __init__(self, rule: str, problem: str) -> None:
        super().__init__(f"credential guard {rule}: {problem}")
        self.rule = rule
        self.problem = problem


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _strings(v)


def bad_cidrs(entries: Any) -> list[str]:
    if entries is None:
        return []
    if not isinstance(entries, list | tuple):
        return [repr(entries)]
    bad = []
    for entry in entries:
        try:
            ipaddress.ip_network(str(entry), strict=True)
        except ValueError:
            bad.append(str(entry))
    return bad


# ---------------------------------------------------------------- the rules: a row -> a problem, or None


def _no_plaintext_key(item: dict[str, Any]) -> str | None:
    named = sorted(KEY_PLAINTEXT_NAMES & set(item))
    if named:
        return f"holds a plaintext attribute {named[0]!r}"
    if any(_KEY_VALUE.search(s) or _SIGNING_VALUE.search(s) for s in _strings(item)):
        return "holds a raw key or signing secret value"
    if not _HEX64.match(str(item.get("key_hash", ""))):
        return "has no keyed hash (key_hash)"
    return None


def _unique_hash(item: dict[str, Any]) -> str | None:
    if item.get("pk") != f"KEY#{item.get('key_hash')}":
        return "is not stored under its own hash (pk must be KEY#<key_hash>)"
    return None


def _webhook_secret_hidden(item: dict[str, Any]) -> str | None:
    named = sorted(WEBHOOK_PLAINTEXT_NAMES & set(item))
    if named:
        return f"holds a plaintext attribute {named[0]!r}"
    if any(_WEBHOOK_VALUE.search(s) for s in _strings(item)):
        return "holds a raw webhook secret value"
    sealed = item.get("secret_sealed")
    if not (isinstance(sealed, dict) and sealed.get("ciphertext")) and not _HEX64.match(str(item.get("secret_hash", ""))):
        return "has neither secret_sealed (encrypted) nor secret_hash"
    return None


def _scoped(item: dict[str, Any]) -> str | None:
    scopes = item.get("scopes")
    if not isinstance(scopes, list | tuple | set) or not scopes:
        return "has no scopes"
    unknown = sorted(str(s) for s in scopes if s not in SCOPES)
    if unknown:
        return f"has an unknown scope {unknown[0]!r}"
    return None


def _valid_cidrs(item: dict[str, Any]) -> str | None:
    bad = bad_cidrs(item.get("ip_allowlist"))
    return f"ip_allowlist entry {bad[0]!r} is not a valid CIDR" if bad else None


class Rule(NamedTuple):
    name: str
    table: str  # the seed's name for the row family
    prefix: str  # pk prefix of the rows it governs
    type: str  # "check" | "unique"
    enforcement: str  # "block" | "warn"
    description: str
    check: Callable[[dict[str, Any]], str | None]


RULES: tuple[Rule, ...] = (
    Rule("api_keys_no_plaintext_secret", "api_credentials", "KEY#", "check", "block",
         "API key rows hold a keyed hash (HMAC-SHA256 under the pepper), never the key or a signing secret.",
         _no_plaintext_key),
    Rule("api_keys_unique_hash", "api_credentials", "KEY#", "unique", "block",
         "One row per key hash: the row's pk is KEY#<key_hash> and is written only if absent.", _unique_hash),
    Rule("webhook_secrets_hashed", "webhook_endpoints", "WHE#", "check", "block",
         "Webhook signing secrets are stored encrypted (secret_sealed, AES-256-GCM under KMS) or hashed, never plain.",
         _webhook_secret_hidden),
    Rule("credential_scope_required", "api_credentials", "KEY#", "check", "block",
         "Every API key has at least one scope, each a known one.", _scoped),
    Rule("ip_allowlist_valid_cidr", "api_credentials", "KEY#", "check", "warn",
         "Every IP allowlist entry is an IPv4 or IPv6 CIDR.", _valid_cidrs),
)
BY_NAME = {r.name: r for r in RULES}


def row_kind(pk: str) -> str | None:
    return "KEY#" if pk.startswith("KEY#") else "WHE#" if pk.startswith("WHE#") else None


def _warn(rule: Rule, problem: str, pk: str) -> None:
    logger.warning("credential guard warning", extra={"rule": rule.name, "problem": problem, "row": pk[:12]})
    metrics.add_metric(name="CredentialGuardWarnings", unit="Count", value=1)


def enforce_put(item: dict[str, Any], *, condition: str | None) -> None:
    """Before a credential row is written whole (PutItem, or a Put in a transaction)."""
    kind = row_kind(str(item.get("pk", "")))
    if kind is None:
        return
    for rule in RULES:
        if rule.prefix != kind:
            continue
        problem = rule.check(item)
        if problem is None and rule.type == "unique" and "attribute_not_exists(pk)" not in (condition or ""):
            problem = "a new key row must be written with attribute_not_exists(pk)"
        if problem is None:
            continue
        if rule.enforcement == "block":
            raise GuardViolation(rule.name, problem)
        _warn(rule, problem, str(item.get("pk")))


def enforce_update(pk: str, expression: str, *, names: dict[str, str] | None, vals: dict[str, Any] | None) -> None:
    """Before an UpdateItem on a credential row: no update may add a plaintext secret or empty the scopes."""
    kind = row_kind(pk)
    if kind is None:
        return
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression)) | set((names or {}).values())
    plain = KEY_PLAINTEXT_NAMES if kind == "KEY#" else WEBHOOK_PLAINTEXT_NAMES
    plain = plain - {"key"}  # "key" is too common a word in expressions to ban by name; values are checked below
    assigned = {k: codec.load({"v": v})["v"] for k, v in (vals or {}).items()}
    if words & plain:
        rule = "api_keys_no_plaintext_secret" if kind == "KEY#" else "webhook_secrets_hashed"
        raise GuardViolation(rule, f"update sets a plaintext attribute {sorted(words & plain)[0]!r}")
    pattern = (_KEY_VALUE, _SIGNING_VALUE) if kind == "KEY#" else (_WEBHOOK_VALUE,)
    if any(p.search(s) for s in _strings(list(assigned.values())) for p in pattern):
        rule = "api_keys_no_plaintext_secret" if kind == "KEY#" else "webhook_secrets_hashed"
        raise GuardViolation(rule, "update writes a raw secret value")
    if kind == "KEY#" and "scopes" in words:
        for value in assigned.values():
            if isinstance(value, list) and not value:
                raise GuardViolation("credential_scope_required", "update empties the scopes")
    if kind == "KEY#" and "ip_allowlist" in words:
        for value in assigned.values():
            if isinstance(value, list) and bad_cidrs(value):
                _warn(BY_NAME["ip_allowlist_valid_cidr"], f"ip_allowlist entry {bad_cidrs(value)[0]!r}", pk)
