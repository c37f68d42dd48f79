"""The local runtime's own machinery: moto transaction fix, stream filter patterns, template reading."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.fixture
def fixed_moto(aws_env: Any) -> Any:
    from tahsil_local import moto_fixes

    moto_fixes.install()
    return aws_env


def _stream_count(table: str) -> int:
    from moto.dynamodb.models import dynamodb_backends

    return len(dynamodb_backends["123456789012"]["us-east-1"].tables[table].stream_shard.items)


def test_a_cancelled_transaction_leaves_no_write_and_no_stream_record(fixed_moto: Any) -> None:
    from tahsil.store import dal

    table = dal.payments_table()
    dal.put(table, {"pk": "A", "sk": "1", "n": 1})
    dal.put(table, {"pk": "E", "sk": "1"})
    before = _stream_count(table)
    with pytest.raises(dal.ConditionFailed) as failed:
        dal.transact([
            dal.put_action(table, {"pk": "B", "sk": "1"}),
            dal.update_action(table, "A", "1", "SET n = :two", condition="n = :one", vals=dal.values(two=2, one=1)),
            dal.put_action(table, {"pk": "E", "sk": "1"}),  # exists: the condition fails
        ])
    assert failed.value.index == 2
    assert dal.get(table, "B", "1") is None
    assert dal.get(table, "A", "1")["n"] == 1
    assert _stream_count(table) == before


def test_a_successful_transaction_writes_everything_and_streams_it(fixed_moto: Any) -> None:
    from tahsil.store import dal

    table = dal.payments_table()
    dal.transact([dal.put_action(table, {"pk": "C", "sk": "1"}), dal.put_action(table, {"pk": "D", "sk": "1"})])
    assert dal.get(table, "C", "1") and dal.get(table, "D", "1")
    assert _stream_count(table) == 2


def test_stream_filter_patterns_match_like_lambda() -> None:
    from tahsil_local.pollers import passes

    pattern = [{"Pattern": json.dumps({"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": ["EVT"]}}}})}]
    insert_event = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "EVT#1"}, "sk": {"S": "EVT"}}}}
    assert passes(pattern, insert_event)
    assert not passes(pattern, {**insert_event, "eventName": "MODIFY"})
    assert not passes(pattern, {"eventName": "INSERT", "dynamodb": {"Keys": {"sk": {"S": "PAY"}}}})
    prefix = [{"Pattern": json.dumps({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "EVT#"}]}}}})}]
    assert passes(prefix, insert_event) and passes(None, {})
