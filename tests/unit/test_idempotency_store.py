"""The Idempotency-Key store (tahsil.api.idempotency): one run per key, and records that Powertools
Idempotency's DynamoDB layer (which earlier versions used) wrote or reads are the same records."""

import threading
import time
from typing import Any

import pytest

from tahsil.api import idempotency
from tahsil.kernel.errors import IdempotencyConflict, IdempotencyInProgress

SCOPE = ["mer_1", "test", "order-7"]
REQUEST = {"method": "POST", "route": "/v1/payments/authorize", "path": "/v1/payments/authorize",
           "body": '{"amount": 500, "currency": "USD"}'}
ANSWER = {"status": 200, "body": {"success": True, "data": {"id": "pay_1", "amount": 500}}}


def _records() -> list[dict[str, Any]]:
    from tahsil.kernel.config import settings
    from tahsil.store import aws, codec

    items = aws.client("dynamodb").scan(TableName=settings().idempotency_table)["Items"]
    return [codec.load(item) for item in items]


def _powertools() -> Any:
    """Powertools' persistence layer configured as tahsil.api.idempotency configured it before."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    from tahsil.kernel.config import settings
    from tahsil.store import aws

    layer = DynamoDBPersistenceLayer(table_name=settings().idempotency_table, boto3_client=aws.client("dynamodb"))
    layer.configure(IdempotencyConfig(event_key_jmespath="scope", payload_validation_jmespath="request",
                                      expires_after_seconds=idempotency.TTL_SECONDS), key_prefix="tahsil")
    return layer


def _data(request: dict[str, str] = REQUEST) -> dict[str, Any]:
    return {"scope": SCOPE, "request": {**request, "body": idempotency._canonical(request["body"])}}


def test_the_first_call_runs_and_a_second_replays_its_answer(aws_env: Any) -> None:
    calls: list[int] = []
    first = idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: calls.append(1) or ANSWER)
    second = idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: calls.append(2) or ANSWER)
    assert first == ANSWER and "replayed" not in first
    assert second == {**ANSWER, "replayed": True}
    assert calls == [1]
    [record] = _records()
    assert record["status"] == "COMPLETED" and record["expiration"] > time.time() + 23 * 3600


def test_a_different_request_under_the_same_key_is_a_conflict(aws_env: Any) -> None:
    idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: ANSWER)
    with pytest.raises(IdempotencyConflict):
        idempotency.run(scope=SCOPE, request={**REQUEST, "body": '{"amount": 501}'}, call=lambda: ANSWER)
    # the same JSON written differently is the same request
    again = idempotency.run(scope=SCOPE, request={**REQUEST, "body": '{"currency":"USD","amount":500}'},
                            call=lambda: ANSWER)
    assert again["replayed"] is True


def test_a_failed_call_frees_the_key_and_a_retry_runs(aws_env: Any) -> None:
    def crash() -> dict[str, Any]:
        raise RuntimeError("processor unreachable")

    with pytest.raises(RuntimeError):
        idempotency.run(scope=SCOPE, request=REQUEST, call=crash)
    assert _records() == []
    assert idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: ANSWER) == ANSWER


def test_a_concurrent_duplicate_is_in_progress_and_runs_nothing(aws_env: Any) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> dict[str, Any]:
        calls.append("first")
        started.set()
        release.wait(10)
        return ANSWER

    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(idempotency.run(scope=SCOPE, request=REQUEST, call=slow)))
    worker.start()
    try:
        assert started.wait(10)
        with pytest.raises(IdempotencyInProgress):
            idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: calls.append("second") or ANSWER)
    finally:
        release.set()
        worker.join(10)
    assert calls == ["first"] and results == [ANSWER]


def test_an_in_progress_record_is_free_once_its_invocation_ran_out_of_time(aws_env: Any) -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 15_000

    idempotency.register_context(Context())
    try:
        before = int(time.time() * 1000)
        assert idempotency._claim(f"tahsil#{idempotency._digest(SCOPE)}", idempotency._digest(_data()["request"])) is None
        [record] = _records()
        assert before + 14_000 <= record["in_progress_expiration"] <= int(time.time() * 1000) + 15_000
        with pytest.raises(IdempotencyInProgress):  # its Lambda may still be running
            idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: ANSWER)
        _set(record["id"], in_progress_expiration=before - 1)  # the Lambda that held it timed out
        assert idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: ANSWER) == ANSWER
    finally:
        idempotency.register_context(None)


def test_an_expired_record_is_claimed_again(aws_env: Any) -> None:
    idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: ANSWER)
    [record] = _records()
    _set(record["id"], expiration=int(time.time()) - 1)  # past its 24 h, before DynamoDB's TTL removed it
    assert idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: {**ANSWER, "status": 201}) == {**ANSWER, "status": 201}


def test_a_record_powertools_completed_replays(aws_env: Any) -> None:
    layer = _powertools()
    layer.save_inprogress(data=_data(), remaining_time_in_millis=10_000)
    layer.save_success(data=_data(), result=idempotency.pack(ANSWER))
    assert idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: pytest.fail("ran twice")) == {**ANSWER, "replayed": True}
    with pytest.raises(IdempotencyConflict):
        idempotency.run(scope=SCOPE, request={**REQUEST, "path": "/v1/payments/sale"}, call=lambda: ANSWER)


def test_a_record_powertools_holds_in_progress_is_in_progress(aws_env: Any) -> None:
    _powertools().save_inprogress(data=_data(), remaining_time_in_millis=10_000)
    with pytest.raises(IdempotencyInProgress):
        idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: pytest.fail("ran while held"))


def test_powertools_reads_our_records_as_its_own(aws_env: Any) -> None:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemAlreadyExistsError,
        IdempotencyValidationError,
    )

    idempotency.run(scope=SCOPE, request=REQUEST, call=lambda: ANSWER)
    layer = _powertools()
    record = layer.get_record(data=_data())
    assert record.status == "COMPLETED"
    assert idempotency.unpack(record.response_json_as_dict()) == ANSWER
    with pytest.raises(IdempotencyItemAlreadyExistsError):
        layer.save_inprogress(data=_data(), remaining_time_in_millis=10_000)
    with pytest.raises(IdempotencyValidationError):
        layer.get_record(data=_data({**REQUEST, "body": "{}"}))


def _set(key: str, **numbers: int) -> None:
    from tahsil.kernel.config import settings
    from tahsil.store import aws

    names = {f"#{k}": k for k in numbers}
    aws.client("dynamodb").update_item(
        TableName=settings().idempotency_table, Key={"id": {"S": key}},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in numbers),
        ExpressionAttributeNames=names, ExpressionAttributeValues={f":{k}": {"N": str(v)} for k, v in numbers.items()},
    )
