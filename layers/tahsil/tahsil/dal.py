"""Data access: the only module that talks to DynamoDB.

Table layout (keys are strings):

PaymentsTable (pk, sk; GSI ``by_owner`` on gsi1pk/gsi1sk; TTL on ``ttl``)
  PAY#<id>   / PAY          a payment; gsi1pk = <merchant>#<mode>#PAY
  TXN#<id>   / TXN          a transaction; gsi1pk = <merchant>#<mode>#TXN
  EVT#<id>   / EVT          an event (the outbox row); gsi1pk = <merchant>#<mode>#EVT
  VEL#<fp>   / <hour>       authorizations per card fingerprint per hour (TTL)
CredentialsTable (pk, sk; GSI ``by_merchant``)
  KEY#<hmac> / KEY          an API key, found by the keyed hash of the key itself
  MER#<id>   / MER          a merchant
IdempotencyTable (id): Powertools' idempotency records (TTL on ``expiration``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from tahsil import aws
from tahsil.config import settings


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


class ConditionFailed(Exception):
    """A conditional write lost; ``index`` says which item of a transaction failed."""

    def __init__(self, index: int | None) -> None:
        super().__init__(f"condition failed on item {index}")
        self.index = index


def _ddb() -> Any:
    return aws.client("dynamodb")


def payments_table() -> str:
    return settings().payments_table


def credentials_table() -> str:
    return settings().credentials_table


def get(table: str, pk: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
    answer = _ddb().get_item(TableName=table, Key=dump({"pk": pk, "sk": sk}), ConsistentRead=consistent)
    raw = answer.get("Item")
    return load(raw) if raw else None


def put(table: str, item: dict[str, Any], *, condition: str | None = None, names: dict[str, str] | None = None) -> None:
    args: dict[str, Any] = {"TableName": table, "Item": dump(item)}
    if condition:
        args["ConditionExpression"] = condition
    if names:
        args["ExpressionAttributeNames"] = names
    try:
        _ddb().put_item(**args)
    except _ddb().exceptions.ConditionalCheckFailedException as exc:
        raise ConditionFailed(0) from exc


def update(table: str, pk: str, sk: str, expression: str, *, names: dict[str, str] | None = None,
           vals: dict[str, Any] | None = None, condition: str | None = None) -> None:
    args: dict[str, Any] = {"TableName": table, "Key": dump({"pk": pk, "sk": sk}), "UpdateExpression": expression}
    if names:
        args["ExpressionAttributeNames"] = names
    if vals:
        args["ExpressionAttributeValues"] = vals
    if condition:
        args["ConditionExpression"] = condition
    try:
        _ddb().update_item(**args)
    except _ddb().exceptions.ConditionalCheckFailedException as exc:
        raise ConditionFailed(0) from exc


def put_action(table: str, item: dict[str, Any], condition: str = "attribute_not_exists(pk)") -> dict[str, Any]:
    return {"Put": {"TableName": table, "Item": dump(item), "ConditionExpression": condition}}


def update_action(table: str, pk: str, sk: str, expression: str, *, condition: str | None,
                  names: dict[str, str] | None = None, vals: dict[str, Any] | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"TableName": table, "Key": dump({"pk": pk, "sk": sk}), "UpdateExpression": expression}
    if condition:
        action["ConditionExpression"] = condition
    if names:
        action["ExpressionAttributeNames"] = names
    if vals:
        action["ExpressionAttributeValues"] = vals
    return {"Update": action}


def transact(actions: list[dict[str, Any]]) -> None:
    """All or nothing. A failed condition raises ConditionFailed naming the item."""
    client = _ddb()
    try:
        client.transact_write_items(TransactItems=actions)
    except client.exceptions.TransactionCanceledException as exc:
        reasons = exc.response.get("CancellationReasons") or []
        for index, reason in enumerate(reasons):
            if reason.get("Code") == "ConditionalCheckFailed":
                raise ConditionFailed(index) from exc
        if any(r.get("Code") == "TransactionConflict" for r in reasons):
            raise ConditionFailed(None) from exc
        raise


def query_owner(table: str, gsi1pk: str, *, newest_first: bool = True, start: dict[str, Any] | None = None,
                sk_from: str | None = None, sk_to: str | None = None, filter_expression: str | None = None,
                names: dict[str, str] | None = None, vals: dict[str, Any] | None = None,
                page_size: int = 100) -> Iterator[dict[str, Any]]:
    """Yield a merchant's items of one kind, newest first, following DynamoDB's pages."""
    key_condition = "gsi1pk = :owner"
    all_vals = values(owner=gsi1pk)
    if sk_from and sk_to:
        key_condition += " AND gsi1sk BETWEEN :from AND :to"
        all_vals.update(values(**{"from": sk_from, "to": sk_to}))
    elif sk_from:
        key_condition += " AND gsi1sk >= :from"
        all_vals.update(values(**{"from": sk_from}))
    elif sk_to:
        key_condition += " AND gsi1sk <= :to"
        all_vals.update(values(to=sk_to))
    all_vals.update(vals or {})
    args: dict[str, Any] = {
        "TableName": table,
        "IndexName": "by_owner",
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": all_vals,
        "ScanIndexForward": not newest_first,
        "Limit": page_size,
    }
    if filter_expression:
        args["FilterExpression"] = filter_expression
    if names:
        args["ExpressionAttributeNames"] = names
    if start:
        args["ExclusiveStartKey"] = dump(start)
    while True:
        page = _ddb().query(**args)
        for raw in page.get("Items", []):
            yield load(raw)
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        args["ExclusiveStartKey"] = last


def count_owner(table: str, gsi1pk: str, *, filter_expression: str | None = None,
                names: dict[str, str] | None = None, vals: dict[str, Any] | None = None) -> int:
    args: dict[str, Any] = {
        "TableName": table,
        "IndexName": "by_owner",
        "KeyConditionExpression": "gsi1pk = :owner",
        "ExpressionAttributeValues": {**values(owner=gsi1pk), **(vals or {})},
        "Select": "COUNT",
    }
    if filter_expression:
        args["FilterExpression"] = filter_expression
    if names:
        args["ExpressionAttributeNames"] = names
    total = 0
    while True:
        page = _ddb().query(**args)
        total += page["Count"]
        last = page.get("LastEvaluatedKey")
        if not last:
            return total
        args["ExclusiveStartKey"] = last
