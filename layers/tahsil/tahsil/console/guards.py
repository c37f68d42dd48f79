"""The credential guards report (``GET /v1/credential-guards``, ``tahsil guards audit``).

The rules themselves, and their enforcement on every write, live with the data in
``tahsil.store.guards``; this module reads the table (a Scan: acceptable for this report only,
never on a request's hot path) and lists the rows written before a rule existed, or behind the
guards' back, that break one. Rows are named by id, prefix and last 4, never by the offending value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from tahsil.store import dal
from tahsil.store.guards import RULES, row_kind


def _name(item: dict[str, Any]) -> dict[str, Any]:
    if str(item.get("pk", "")).startswith("KEY#"):
        return {"kind": "api_key", "id": item.get("key_id"), "prefix": item.get("prefix"), "last4": item.get("last4"),
                "mode": item.get("mode")}
    return {"kind": "webhook_endpoint", "id": item.get("id"), "mode": item.get("mode")}


def audit_rows(rows: Iterable[dict[str, Any]], mode: str | None = None) -> dict[str, Any]:
    """The report over ``rows``; with ``mode``, only that mode's rows are named (key management stays in its mode)."""
    issues: list[dict[str, Any]] = []
    hashes: Counter[str] = Counter()
    keyed: list[dict[str, Any]] = []
    for item in rows:
        kind = row_kind(str(item.get("pk", "")))
        if kind is None:
            continue
        if kind == "KEY#":
            hashes[str(item.get("key_hash"))] += 1
            keyed.append(item)
        for rule in RULES:
            if rule.prefix == kind:
                problem = rule.check(item)
                if problem:
                    issues.append({"rule": rule.name, "enforcement": rule.enforcement, "row": _name(item),
                                   "problem": problem})
    for item in keyed:
        if hashes[str(item.get("key_hash"))] > 1:
            issues.append({"rule": "api_keys_unique_hash", "enforcement": "block", "row": _name(item),
                           "problem": "shares its key_hash with another row"})
    if mode is not None:
        issues = [i for i in issues if i["row"].get("mode") == mode]
    counts = Counter(i["rule"] for i in issues)
    rules = [{"name": r.name, "table": r.table, "type": r.type, "status": "installed", "enforcement": r.enforcement,
              "blocks_future": r.enforcement == "block", "description": r.description, "legacy_issues": counts[r.name]}
             for r in RULES]
    blocking = sum(1 for i in issues if i["enforcement"] == "block")
    return {
        "object": "credential_guards",
        "healthy": blocking == 0,
        "installed": len(RULES),
        "total": len(RULES),
        "legacy_issues": len(issues),
        "rules": rules,
        "legacy": issues,
    }


def audit(merchant_id: str | None, mode: str | None = None) -> dict[str, Any]:
    """The report for one merchant's rows in ``mode`` (``None``: every row, for operators)."""
    if merchant_id is None:
        rows = dal.scan(dal.credentials_table())
    else:
        rows = dal.scan(dal.credentials_table(), filter_expression="merchant_id = :m", vals=dal.values(m=merchant_id))
    return audit_rows(rows, mode)
