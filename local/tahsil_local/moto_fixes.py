"""Make moto's DynamoDB transactions cost what they touch, not the whole table.

moto backs up every table a ``TransactWriteItems`` names with ``copy.deepcopy`` before
applying it, so a transaction's cost grows with the table (items and stream records):
after a few thousand rows, each payment spends most of its time copying. Here the backup
holds only the items the transaction names, plus the stream's length, and a failed
transaction puts exactly those back. Semantics are unchanged (tests/unit/test_local_runtime.py
checks that a cancelled transaction leaves no write and no stream record behind).

DynamoDB applies each write (a conditional put/update/delete, a whole transaction) atomically;
moto checks conditions and then writes without a lock, so two threads can both pass a condition.
Each write here holds one lock, as the real service serializes writes to an item.
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from typing import Any

_installed = False


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
                return _method(self, *args, **kwargs)

        setattr(models.DynamoDBBackend, name, functools.wraps(method)(atomic))
    _installed = True
