"""Make moto's DynamoDB transactions cost what they touch, not the whole table.

moto backs up every table a ``TransactWriteItems`` names with ``copy.deepcopy`` before
applying it, so a transaction's cost grows with the table (items and stream records):
after a few thousand rows, each payment spends most of its time copying. Here the backup
holds only the items the transaction names, plus the stream's length, and a failed
transaction puts exactly those back. Semantics are unchanged (tests/unit/test_local_runtime.py
checks that a cancelled transaction leaves no write and no stream record behind).

DynamoDB applies each write (a conditional put/update/delete, a whole transaction) atomically;
moto checks conditions and then writes without a lock, so two threads can both pass a condition.
Each write here holds one lock, as the real service serializes writes to an item, and answers
with a copy of the item taken under that lock.

Two more, for the local runtime's throughput (issue 27):

- moto's server finds the backend of every request by listing its own package directory and
  trying some hundreds of URL patterns: a quarter of the gateway process's CPU under load. The
  answer depends on the host name alone, so it is remembered per host name.
- The local event source pollers (``tahsil_local.pollers``) wait on a doorbell instead of polling
  moto ten times a second: a message put on a queue, or a record added to a table's stream,
  rings the queue's or the table's bell (``ring``/``doorbell``), and the poller looks at once.
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from typing import Any

_installed = False
_bells: dict[str, tuple[threading.Event, ...]] = {}
_bells_lock = threading.Lock()


def doorbell(name: str) -> threading.Event:
    """A new event, set whenever something arrives on the queue or table stream named ``name``
    (one per listener: two pollers of one stream each clear their own)."""
    bell = threading.Event()
    with _bells_lock:
        _bells[name] = (*_bells.get(name, ()), bell)
    return bell


def ring(name: str) -> None:
    for bell in _bells.get(name, ()):
        bell.set()


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    def _deepcopy(obj: Any, memo: Any = None) -> Any:
        # The table "backup" is the table itself; the wrapper below keeps the real backup.
        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)

    models.copy = types.SimpleNamespace(deepcopy=_deepcopy)  # type: ignore[attr-defined]
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []
        streams: dict[int, tuple[Any, int]] = {}
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            if "Key" in op:
                key = op["Key"]
            elif "Item" in op:
                key = {a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a and a in op["Item"]}
            else:
                continue
            try:
                hash_value, range_value = self.get_keys_value(table, key)
                current = table.get_item(hash_value, range_value)
            except Exception:  # noqa: BLE001 - a malformed key fails inside moto, with its own error
                continue
            saved.append((table, hash_value, range_value, copy.deepcopy(current) if current is not None else None))
            if table.stream_shard is not None:
                streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                if item is None:
                    try:
                        table.delete_item(hash_value, range_value)
                    except KeyError:
                        pass
                elif range_value is not None:
                    table.items[hash_value][range_value] = item
                else:
                    table.items[hash_value] = item
            for shard, length in streams.values():
                del shard.items[length:]
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        method = getattr(models.DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with lock:
                # moto answers with the stored item itself and serializes it after the write: a copy taken
                # under the lock, or a racing write can change the answer (two requests told count 50).
                return copy.deepcopy(_method(self, *args, **kwargs))

        setattr(models.DynamoDBBackend, name, functools.wraps(method)(atomic))
    _install_doorbells()
    _cache_backend_lookup()
    _plain_dynamodb_answers()
    _installed = True


def _wire_json(value: Any) -> Any:
    """``json.dumps``'s default for what a DynamoDB answer may hold besides JSON: blobs, times, decimals."""
    import base64
    import datetime as dt
    import decimal

    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _plain_dynamodb_answers() -> None:
    """DynamoDB's item operations answer in JSON that moto already builds in wire form (``{"Item": {"pk":
    {"S": ...}}}``); moto still walks it through its generic, model-driven serializer, which costs more than
    the rest of the request (a GetItem: ~2 of ~3 ms). Those answers are written with ``json.dumps`` instead;
    errors, and every other operation, keep moto's serializer."""
    import json

    from moto.dynamodb.responses import DynamoResult

    serialize = DynamoResult.execute_result
    plain = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "TransactWriteItems", "TransactGetItems",
             "BatchGetItem", "BatchWriteItem", "Scan"}

    def execute_result(self: Any, context: Any) -> Any:
        if isinstance(self.result, dict) and context.operation_model.name in plain:
            body = json.dumps(_drop_none(self.result), default=_wire_json, separators=(",", ":"))
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return serialize(self, context)

    DynamoResult.execute_result = functools.wraps(serialize)(execute_result)  # type: ignore[method-assign]


def _install_doorbells() -> None:
    from moto.dynamodb.models.table import StreamShard
    from moto.sqs.models import Queue

    add_record = StreamShard.add

    def add(self: Any, old: Any, new: Any) -> None:
        add_record(self, old, new)
        ring(self.table.name)

    StreamShard.add = functools.wraps(add_record)(add)  # type: ignore[method-assign]
    add_message = Queue.add_message

    def queued(self: Any, message: Any) -> None:
        add_message(self, message)
        ring(self.name)

    Queue.add_message = functools.wraps(add_message)(queued)  # type: ignore[method-assign]


def _cache_backend_lookup() -> None:
    try:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    except ImportError:  # moto without its server extra: nothing to cache
        return
    lookup = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        try:
            return found[host]
        except KeyError:
            backend = found[host] = lookup(self, host)
            return backend

    DomainDispatcherApplication.get_backend_for_host = functools.wraps(lookup)(get_backend_for_host)  # type: ignore[method-assign]
