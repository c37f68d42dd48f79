"""The capacity meter behind `make bench` (scripts/bench_scale.py): its figures are the issue-15 targets, so
its arithmetic is checked against DynamoDB's published rules here."""

from __future__ import annotations

from typing import Any

import pytest

from scripts import bench_scale
from tahsil.store import dal


@pytest.fixture
def meter(aws_env: Any) -> Any:
    m = bench_scale.CapacityMeter()
    yield m
    m.stop()


def _item(pk: str, size: int, owner: str | None = None) -> dict[str, Any]:
    item = {"pk": pk, "sk": "X", "blob": "x" * size}
    if owner:
        item |= {"gsi1pk": owner, "gsi1sk": "2026-12-01T00:00:00Z#1"}
    return item


def test_a_put_costs_a_unit_per_started_kb_and_its_index_copy(meter: Any) -> None:
    cap = meter.start()
    dal.put(dal.payments_table(), _item("PAY#pay_a", 1500, owner="mer_a#test#PAY"))
    assert cap.wru == 2 + 2  # 1.5 KB: 2 units, and 2 more for the by_owner copy (projection ALL)
    assert cap.partitions["Payments: PAY#<pay>"] == 2
    assert cap.partitions["Payments.by_owner: <merchant>#test#PAY"] == 2


def test_transactional_writes_cost_double_and_an_unindexed_item_no_index_units(meter: Any) -> None:
    cap = meter.start()
    dal.transact([dal.put_action(dal.payments_table(), _item("PAY#pay_b", 100, owner="mer_b#live#PAY")),
                  dal.put_action(dal.payments_table(), _item("CNT#mer_b#live#TXN", 10))])
    assert cap.wru == 2 + 1 + 2
    assert dict(cap.by) == {"Payments PAY Put": 3, "Payments CNT Put": 2}


def test_an_update_that_keeps_the_index_keys_rewrites_the_copy_once(meter: Any) -> None:
    table = dal.payments_table()
    dal.put(table, _item("PAY#pay_c", 100, owner="mer_c#test#PAY"))
    cap = meter.start()
    dal.update(table, "PAY#pay_c", "X", "SET #s = :s", names={"#s": "status"}, vals=dal.values(s="captured"))
    assert cap.wru == 1 + 1


def test_shared_partitions_and_their_ceilings() -> None:
    assert bench_scale.generalise("mer_Thw9UR2q6SUSPL5lNDbM#test#EVT") == "<merchant>#test#EVT"
    assert bench_scale.generalise("RL#mer_x1#payments#s#1796650260") == "RL#<merchant>#payments#s#<n>"
    assert bench_scale.shared_partition("Payments.by_owner: <merchant>#test#EVT")
    assert not bench_scale.shared_partition("Payments: PAY#<pay>")
    cap = bench_scale.Capacity()
    cap.partitions.update({"Payments.by_owner: <merchant>#test#EVT": 4.0, "Payments: PAY#<pay>": 9.0,
                           "Payments: WHEEL#<n>#0": 1.0})
    rows = bench_scale.hot_partitions({"total": cap})
    assert rows == [("Payments.by_owner: <merchant>#test#EVT", 4.0, 250.0), ("Payments: WHEEL#<n>#0", 1.0, 1000.0)]


def test_a_failed_condition_still_costs_its_write(meter: Any) -> None:
    table = dal.payments_table()
    dal.put(table, _item("PAY#pay_d", 1500, owner="mer_d#test#PAY"))
    cap = meter.start()
    with pytest.raises(dal.ConditionFailed):
        dal.put(table, _item("PAY#pay_d", 100, owner="mer_d#test#PAY"), condition="attribute_not_exists(pk)")
    assert cap.wru == 2  # the item it would have replaced is 1.5 KB; no index copy changes
