"""tahsil.store.codec writes what boto3's TypeSerializer writes, and reads it back as Tahsil's values."""

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from tahsil.store import codec

scalars = st.one_of(st.text(max_size=20), st.integers(min_value=-(10**30), max_value=10**30), st.booleans(),
                    st.binary(max_size=20), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4),
                            st.frozensets(st.text(max_size=5), min_size=1, max_size=3),
                            st.frozensets(st.integers(-1000, 1000), min_size=1, max_size=3)),
    max_leaves=12,
)


def _boto3_plain(value: Any) -> Any:
    """What boto3's deserializer gives, in Tahsil's terms: Decimal -> int, Binary -> bytes."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, Binary):
        return value.value
    if isinstance(value, dict):
        return {k: _boto3_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_boto3_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {_boto3_plain(v) for v in value}
    return value


def _canonical(typed: Any) -> Any:
    """Typed JSON with sets in a fixed order (a set's order is not part of its value)."""
    if isinstance(typed, dict):
        return {k: sorted(v, key=repr) if k in ("SS", "NS", "BS") else _canonical(v) for k, v in typed.items()}
    if isinstance(typed, list):
        return [_canonical(v) for v in typed]
    return typed


@settings(max_examples=300, deadline=None)
@given(values)
def test_serialize_matches_boto3_and_round_trips(value: Any) -> None:
    ours = codec.serialize(value)
    theirs = TypeSerializer().serialize(value)
    assert _canonical(ours) == _canonical(theirs)
    assert codec.deserialize(ours) == _boto3_plain(TypeDeserializer().deserialize(theirs))


def test_items_drop_absent_attributes_and_expression_values_are_named() -> None:
    assert codec.dump({"pk": "PAY#1", "amount": 500, "note": None, "card": b"\x01\x02"}) == {
        "pk": {"S": "PAY#1"}, "amount": {"N": "500"}, "card": {"B": b"\x01\x02"}}
    assert codec.values(s="captured", n=3) == {":s": {"S": "captured"}, ":n": {"N": "3"}}
    assert codec.load({"amount": {"N": "1E+3"}, "card": {"B": b"x"}, "ok": {"BOOL": True}}) == {
        "amount": 1000, "card": b"x", "ok": True}
    assert codec.serialize(Binary(b"raw")) == {"B": b"raw"}


@pytest.mark.parametrize("bad", [1.5, float("nan"), Decimal("Infinity"), set(), {1, "a"}, object()])
def test_values_dynamodb_cannot_hold_are_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError):
        codec.serialize(bad)
