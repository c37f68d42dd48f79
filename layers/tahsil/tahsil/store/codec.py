"""Python values <-> DynamoDB's typed JSON, for every module that builds requests by hand."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _codec() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def dump(item: dict[str, Any]) -> dict[str, Any]:
    ser = _codec()[0]
    return {k: ser.serialize(v) for k, v in item.items() if v is not None}


def load(raw: dict[str, Any]) -> dict[str, Any]:
    de = _codec()[1]
    return {k: _plain(de.deserialize(v)) for k, v in raw.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; every number we store is an integer."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def values(**kwargs: Any) -> dict[str, Any]:
    """``values(s="captured")`` -> ``{":s": {"S": "captured"}}`` for expressions."""
    ser = _codec()[0]
    return {f":{k}": ser.serialize(v) for k, v in kwargs.items()}
