"""Data access: the only module that talks to DynamoDB.

Table layout (keys are strings):

PaymentsTable (pk, sk; GSI ``by_owner`` on gsi1pk/gsi1sk; TTL on ``ttl``)
  PAY#<id>   / PAY          a payment; gsi1pk = <merchant>#<mode>#PAY
  TXN#<merchant>#<mode> / <txn id>   a transaction (ids sort by time; no index copy). Rows written
                            before this layout: TXN#<id> / TXN with gsi1pk = <merchant>#<mode>#TXN
  TXR#<derived id> / TXR    which transaction a keyed live capture/void/refund made (30 days, TTL)
  EVTS#<merchant>#<mode> / <evt id>   an event (the outbox row), ids ordered by time; no index copy;
                            before this layout: EVT#<id> / EVT with gsi1pk = <merchant>#<mode>#EVT
  EVT#<evt id> / DLV#<endpoint>[#<round>#<n>]   a delivery and its failed attempts
  VEL#<fp>   / <hour>       authorizations per card fingerprint per hour (TTL)
  WHEEL#<bucket end>#<shard> / <id>#<action>   a deadline on the expiry time wheel (TTL)
CredentialsTable (pk, sk; GSI ``by_merchant``)
  KEY#<hmac> / KEY          an API key, found by the keyed hash of the key itself
  MER#<id>   / MER          a merchant (api_version pin, rate_limits overrides)
  Every write of a credential row passes the credential guards first (tahsil.store.guards).
RateLimitTable (pk; TTL on ``ttl``): fixed-window counters, RL#<subject>#<class>#s|h#<window>.
RequestLogsTable (pk, sk; TTL on ``ttl``): LOG#<merchant>#<mode> / <time>#<request id>, 30 days.
IdempotencyTable (id): Powertools' idempotency records (TTL on ``expiration``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from tahsil.kernel.config import settings
from tahsil.store import aws, guards
from tahsil.store.codec import dump, load, values


class ConditionFailed(Exception):
    """A conditional write lost; ``index`` says which item of a transaction failed."""

    def __init__(self, index: int | None, old: dict[str, Any] | None = None,
                 failed: dict[int, dict[str, Any] | None] | None = None) -> None:
        super().__init__(f"condition failed on item {index}")
        self.index = index
        self.old = old  # the item as the failed condition found it, when the caller asked for it
        self.failed = failed if failed is not None else ({} if index is None else {index: old})  # every failed item


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


def _guard_put(table: str, item: dict[str, Any], condition: str | None) -> None:
    if table == credentials_table():
        guards.enforce_put(item, condition=condition)


def _guard_update(table: str, pk: str, expression: str, names: dict[str, str] | None, vals: dict[str, Any] | None) -> None:
    if table == credentials_table():
        guards.enforce_update(pk, expression, names=names, vals=vals)


def put(table: str, item: dict[str, Any], *, condition: str | None = None, names: dict[str, str] | None = None) -> None:
    _guard_put(table, item, condition)
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
           vals: dict[str, Any] | None = None, condition: str | None = None,
           returning: str | None = None) -> dict[str, Any]:
    """One UpdateItem; with ``returning`` (``UPDATED_NEW``...) the attributes DynamoDB returns, else {}."""
    _guard_update(table, pk, expression, names, vals)
    args: dict[str, Any] = {"TableName": table, "Key": dump({"pk": pk, "sk": sk}), "UpdateExpression": expression}
    if names:
        args["ExpressionAttributeNames"] = names
    if vals:
        args["ExpressionAttributeValues"] = vals
    if condition:
        args["ConditionExpression"] = condition
    if returning:
        args["ReturnValues"] = returning
    try:
        answer = _ddb().update_item(**args)
    except _ddb().exceptions.ConditionalCheckFailedException as exc:
        raise ConditionFailed(0) from exc
    return load(answer.get("Attributes") or {})


def put_action(table: str, item: dict[str, Any], condition: str | None = "attribute_not_exists(pk)") -> dict[str, Any]:
    _guard_put(table, item, condition)
    action: dict[str, Any] = {"TableName": table, "Item": dump(item)}
    if condition:
        action["ConditionExpression"] = condition
    return {"Put": action}


def update_action(table: str, pk: str, sk: str, expression: str, *, condition: str | None,
                  names: dict[str, str] | None = None, vals: dict[str, Any] | None = None) -> dict[str, Any]:
    _guard_update(table, pk, expression, names, vals)
    action: dict[str, Any] = {"TableName": table, "Key": dump({"pk": pk, "sk": sk}), "UpdateExpression": expression}
    if condition:
        action["ConditionExpression"] = condition
    if names:
        action["ExpressionAttributeNames"] = names
    if vals:
        action["ExpressionAttributeValues"] = vals
    return {"Update": action}


def transact(actions: list[dict[str, Any]]) -> None:
    """All or nothing. A failed condition raises ConditionFailed naming the item (and holding it as
    found, if that action asked for ``ReturnValuesOnConditionCheckFailure``)."""
    client = _ddb()
    try:
        client.transact_write_items(TransactItems=actions)
    except client.exceptions.TransactionCanceledException as exc:
        reasons = exc.response.get("CancellationReasons") or []
        failed = {index: load(reason["Item"]) if reason.get("Item") else None
                  for index, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"}
        if failed:
            first = min(failed)
            raise ConditionFailed(first, failed[first], failed) from exc
        if any(r.get("Code") == "TransactionConflict" for r in reasons):
            raise ConditionFailed(None) from exc
        raise


def _key_condition(pk_attr: str, pk_value: str, sk_attr: str, sk_from: str | None,
                   sk_to: str | None) -> tuple[str, dict[str, Any]]:
    """A partition, optionally narrowed to a sort-key range (either end may be open)."""
    condition = f"{pk_attr} = :owner"
    vals = values(owner=pk_value)
    if sk_from and sk_to:
        condition += f" AND {sk_attr} BETWEEN :from AND :to"
        vals.update(values(**{"from": sk_from, "to": sk_to}))
    elif sk_from:
        condition += f" AND {sk_attr} >= :from"
        vals.update(values(**{"from": sk_from}))
    elif sk_to:
        condition += f" AND {sk_attr} <= :to"
        vals.update(values(to=sk_to))
    return condition, vals


def resume_after(item: dict[str, Any]) -> dict[str, Any]:
    """The ExclusiveStartKey that continues a by_owner listing after ``item`` (a cursor)."""
    return {k: item[k] for k in ("pk", "sk", "gsi1pk", "gsi1sk")}


def take(items: Iterator[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], bool]:
    """At most ``limit`` items, and whether there were more."""
    page: list[dict[str, Any]] = []
    for item in items:
        if len(page) == limit:
            return page, True
        page.append(item)
    return page, False


def _pages(operation: str, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of a query or scan, following LastEvaluatedKey (one request per page, lazily)."""
    args = dict(args)
    while True:
        page = getattr(_ddb(), operation)(**args)
        yield page
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        args["ExclusiveStartKey"] = last


def query_owner(table: str, gsi1pk: str, *, newest_first: bool = True, start: dict[str, Any] | None = None,
                sk_from: str | None = None, sk_to: str | None = None, filter_expression: str | None = None,
                names: dict[str, str] | None = None, vals: dict[str, Any] | None = None,
                page_size: int = 100, index: str = "by_owner") -> Iterator[dict[str, Any]]:
    """Yield a merchant's items of one kind, newest first, following DynamoDB's pages."""
    key_condition, all_vals = _key_condition("gsi1pk", gsi1pk, "gsi1sk", sk_from, sk_to)
    all_vals.update(vals or {})
    args: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
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
    for page in _pages("query", args):
        for raw in page.get("Items", []):
            yield load(raw)


def query_partition(table: str, pk: str, sk_prefix: str) -> list[dict[str, Any]]:
    """Every item of one partition whose sort key starts with ``sk_prefix`` (strongly consistent; "": all of it)."""
    args: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)" if sk_prefix else "pk = :pk",
        "ExpressionAttributeValues": values(pk=pk, prefix=sk_prefix) if sk_prefix else values(pk=pk),
        "ConsistentRead": True,
    }
    return [load(raw) for page in _pages("query", args) for raw in page.get("Items", [])]


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
    return sum(page["Count"] for page in _pages("query", args))


def get_many(table: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Several items by (pk, sk) with BatchGetItem (100 per call, strongly consistent); missing ones are absent."""
    client = _ddb()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 100):
        request: dict[str, Any] = {table: {"Keys": [dump({"pk": pk, "sk": sk}) for pk, sk in unique[start:start + 100]],
                                           "ConsistentRead": True}}
        for _ in range(10):
            answer = client.batch_get_item(RequestItems=request)
            for raw in answer.get("Responses", {}).get(table, []):
                item = load(raw)
                found[(item["pk"], item["sk"])] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
    return found


# ---------------------------------------------------------------- developer platform


def rate_limit_table() -> str:
    return settings().rate_limit_table


def request_logs_table() -> str:
    return settings().request_logs_table


def increment(table: str, pk: str, *, expires: int) -> int:
    """Atomically add 1 to the counter item ``pk`` (created at 0, expiring at ``expires``); return the new count."""
    answer = _ddb().update_item(
        TableName=table, Key=dump({"pk": pk}), UpdateExpression="ADD n :one SET #ttl = if_not_exists(#ttl, :ttl)",
        ExpressionAttributeNames={"#ttl": "ttl"}, ExpressionAttributeValues=values(one=1, ttl=expires),
        ReturnValues="UPDATED_NEW",
    )
    return int(answer["Attributes"]["n"]["N"])


def update_counter(table: str, pk: str, expression: str, *, condition: str, names: dict[str, str] | None = None,
                   vals: dict[str, Any] | None = None) -> dict[str, Any]:
    """A conditional UpdateItem on a counter item (key ``pk`` alone); returns the item as written.

    A failed condition raises ConditionFailed whose ``old`` is the item as found ({} if absent), so
    the caller can pick the right update without reading it.
    """
    args: dict[str, Any] = {"TableName": table, "Key": dump({"pk": pk}), "UpdateExpression": expression,
                            "ConditionExpression": condition, "ReturnValues": "ALL_NEW",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if names:
        args["ExpressionAttributeNames"] = names
    if vals:
        args["ExpressionAttributeValues"] = vals
    client = _ddb()
    try:
        return load(client.update_item(**args)["Attributes"])
    except client.exceptions.ConditionalCheckFailedException as exc:
        raise ConditionFailed(0, load(exc.response.get("Item") or {})) from exc


def batch_put(table: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BatchWriteItem, 25 at a time, retrying unprocessed items a few times; return the items never written."""
    client = _ddb()
    failed: list[dict[str, Any]] = []
    for start in range(0, len(items), 25):
        chunk = items[start:start + 25]
        request = {table: [{"PutRequest": {"Item": dump(i)}} for i in chunk]}
        for attempt in range(5):
            answer = client.batch_write_item(RequestItems=request)
            request = answer.get("UnprocessedItems") or {}
            if not request:
                break
            time.sleep(0.05 * 2 ** attempt)
        for left in (request or {}).get(table, []):
            failed.append(load(left["PutRequest"]["Item"]))
    return failed


def query_page(table: str, pk: str, *, newest_first: bool = True, sk_from: str | None = None, sk_to: str | None = None,
               start_sk: str | None = None, filter_expression: str | None = None, names: dict[str, str] | None = None,
               vals: dict[str, Any] | None = None, page_size: int = 100,
               consistent: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a partition (pk) in sort-key order; returns the items and the sort key to continue after."""
    key_condition, all_vals = _key_condition("pk", pk, "sk", sk_from, sk_to)
    all_vals.update(vals or {})
    args: dict[str, Any] = {"TableName": table, "KeyConditionExpression": key_condition,
                            "ExpressionAttributeValues": all_vals, "ScanIndexForward": not newest_first, "Limit": page_size,
                            "ConsistentRead": consistent}
    if filter_expression:
        args["FilterExpression"] = filter_expression
    if names:
        args["ExpressionAttributeNames"] = names
    if start_sk:
        args["ExclusiveStartKey"] = dump({"pk": pk, "sk": start_sk})
    page = _ddb().query(**args)
    last = page.get("LastEvaluatedKey")
    return [load(raw) for raw in page.get("Items", [])], (load(last)["sk"] if last else None)


def scan(table: str, *, filter_expression: str | None = None, names: dict[str, str] | None = None,
         vals: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Every item of a table. Only the credential-guard audit uses it (an operator-grade report, not a hot path)."""
    args: dict[str, Any] = {"TableName": table}
    if filter_expression:
        args["FilterExpression"] = filter_expression
    if names:
        args["ExpressionAttributeNames"] = names
    if vals:
        args["ExpressionAttributeValues"] = vals
    for page in _pages("scan", args):
        for raw in page.get("Items", []):
            yield load(raw)
