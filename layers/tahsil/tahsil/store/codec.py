"""Python values <-> DynamoDB's typed JSON, for every module that builds requests by hand.

The mapping is boto3's (``boto3.dynamodb.types``), written out here so an API function never imports
boto3: its package pulls in s3transfer and multiprocessing, ~12 ms of a cold start's CPU
(docs/decisions/cost.md, "No boto3 on the request path"). What differs: binary values come back
as ``bytes`` (boto3 wraps them in ``Binary``), and numbers as ``int`` (every number Tahsil stores is an
integer; boto3 gives ``Decimal``).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal
from typing import Any


def serialize(value: Any) -> dict[str, Any]:
    """One attribute value: ``"a"`` -> ``{"S": "a"}``, ``5`` -> ``{"N": "5"}``, ``{...}`` -> ``{"M": {...}}``."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):  # before int: a bool is an int
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, Decimal)):
        return {"N": _number(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if hasattr(value, "value") and isinstance(value.value, (bytes, bytearray)):  # boto3's Binary
        return {"B": bytes(value.value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if isinstance(value, Set):
        return _set(value)
    if isinstance(value, (list, tuple)):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use int or Decimal.")
    raise TypeError(f"unsupported type {type(value).__name__!r} for a DynamoDB value")


def _number(value: int | Decimal) -> str:
    if isinstance(value, Decimal) and not value.is_finite():
        raise TypeError("Infinity and NaN are not supported by DynamoDB")
    return str(value)


def _set(values: Set[Any]) -> dict[str, Any]:
    items = list(values)
    if not items:
        raise TypeError("an empty set has no DynamoDB type")
    if all(isinstance(v, str) for v in items):
        return {"SS": items}
    if all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in items):
        return {"NS": [_number(v) for v in items]}
    if all(isinstance(v, (bytes, bytearray)) for v in items):
        return {"BS": [bytes(v) for v in items]}
    raise TypeError("a set's members must all be strings, all numbers or all bytes")


def deserialize(raw: dict[str, Any]) -> Any:
    """One typed attribute value back to Python (numbers as ``int``, binaries as ``bytes``)."""
    [(kind, value)] = raw.items()
    if kind == "S":
        return value
    if kind == "N":
        return _int(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(value)
    if kind == "M":
        return {k: deserialize(v) for k, v in value.items()}
    if kind == "L":
        return [deserialize(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {_int(v) for v in value}
    if kind == "BS":
        return {bytes(v) for v in value}
    raise TypeError(f"unknown DynamoDB type {kind!r}")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # "5.0", "1E+3": DynamoDB's own forms of an integer
        return int(Decimal(text))


def dump(item: dict[str, Any]) -> dict[str, Any]:
    return {k: serialize(v) for k, v in item.items() if v is not None}


def load(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: deserialize(v) for k, v in raw.items()}


def values(**kwargs: Any) -> dict[str, Any]:
    """``values(s="captured")`` -> ``{":s": {"S": "captured"}}`` for expressions."""
    return {f":{k}": serialize(v) for k, v in kwargs.items()}
