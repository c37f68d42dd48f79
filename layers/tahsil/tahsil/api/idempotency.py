"""Idempotency-Key semantics on top of Powertools Idempotency (DynamoDB persistence).

Configured deliberately, as the design asks:
- the key is merchant + mode + Idempotency-Key (``scope``), with one prefix for every
  function, so a key is scoped to the account, not to one endpoint;
- the payload check covers method, route, path and the canonical JSON body, so the same
  key with different parameters or on another endpoint is a 409;
- a concurrent duplicate raises IdempotencyAlreadyInProgressError: a 409, and nothing is stored;
- the stored answer is the first response's status and body; a replay carries a marker
  that becomes ``Idempotent-Replayed: true``;
- the answer is stored compressed (``pack``): its JSON text in the original key order, deflated
  with a preset dictionary of the payment object's field names and base85-encoded, so a payment's
  record stays well under 1 KB (one write unit) and a replay sends the first response's bytes;
- records live 24 hours (TTL); an unexpected exception deletes the record (Powertools'
  behaviour), so a retry after a crash runs again instead of replaying an error.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import json
import zlib
from collections.abc import Callable
from typing import Any

from tahsil.kernel.config import settings
from tahsil.kernel.errors import IdempotencyConflict, IdempotencyInProgress
from tahsil.store import aws

TTL_SECONDS = 24 * 60 * 60


def _mark_replayed(response: Any, _record: Any) -> Any:
    return {**response, "replayed": True}


# Powertools' idempotency package imports boto3 (~150 ms): it is loaded on first use, not at import.
@functools.cache
def config() -> Any:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath="scope",
        payload_validation_jmespath="request",
        expires_after_seconds=TTL_SECONDS,
        raise_on_no_idempotency_key=True,
        response_hook=_mark_replayed,
    )


@functools.cache
def _store() -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table, boto3_client=aws.client("dynamodb"))


_CONTEXT: contextvars.ContextVar[Any] = contextvars.ContextVar("tahsil_lambda_context", default=None)


def register_context(context: Any) -> None:
    """Keeps the invocation's Lambda context for ``run``, which hands it to Powertools (to expire an
    in-progress record when the Lambda that held it timed out). Powertools' idempotency package, and
    boto3 with it, loads only when a request sends an Idempotency-Key, not on every request."""
    _CONTEXT.set(context)


def _canonical(body: str) -> str:
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return body


# The preset dictionary of format "z1": strings a payment answer (the commonest stored answer) repeats.
# Records written with it must stay readable for their 24 hours: never edit it; add "z2" instead.
_Z1_DICTIONARY = (
    b'{"status":200,"body":{"success":false,"error":{"code":"PAYMENT_DECLINED","message":"card declined: ",'
    b'"param":null,"request_id":"","decline_code":"05","payment_id":"pay_","transaction_id":"txn_"}}}'
    b'{"status":200,"body":{"success":true,"data":{"id":"pay_","object":"payment","status":"authorized","amount":'
    b',"currency":"USD","captured_amount":0,"refunded_amount":0,"remaining_amount":0,"card_brand":"visa",'
    b'"card_last4":"","card_exp_month":,"card_exp_year":20,"auth_code":"","response_code":"00",'
    b'"response_message":"Approved","fraud_score":0,"fraud_decision":"approve","transaction_id":"txn_",'
    b'"description":"","customer":{"email":"","name":""},"metadata":{},"livemode":false,"created_at":"20",'
    b'"expires_at":"20","captured_at":null,"voided_at":null,"void_reason":null,"refunded_at":null,'
    b'"refund_reason":null}}}'
)


def pack(answer: dict[str, Any]) -> dict[str, str]:
    """The stored form of an answer: ``{"z1": base85(raw deflate(JSON, preset dictionary))}``.

    The JSON keeps the answer's own key order (Powertools would sort it), so the replay is the same bytes.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=_Z1_DICTIONARY)
    text = json.dumps(answer, separators=(",", ":")).encode()
    return {"z1": base64.b85encode(deflate.compress(text) + deflate.flush()).decode()}


def unpack(stored: dict[str, Any]) -> dict[str, Any]:
    """The answer a record holds (records written before ``pack`` hold it as is)."""
    if "z1" not in stored:
        return {k: v for k, v in stored.items() if k != "replayed"}
    inflate = zlib.decompressobj(-15, zdict=_Z1_DICTIONARY)
    raw = base64.b85decode(stored["z1"])
    answer: dict[str, Any] = json.loads(inflate.decompress(raw) + inflate.flush())
    return answer


def _call(data: dict[str, Any], call: Callable[[], dict[str, Any]]) -> dict[str, str]:
    return pack(call())


def run(*, scope: list[str], request: dict[str, str], call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    data = {"scope": scope, "request": {**request, "body": _canonical(request.get("body", ""))}}
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    context = _CONTEXT.get()
    if hasattr(context, "get_remaining_time_in_millis"):
        config().register_lambda_context(context)
    guarded = idempotent_function(
        _call, data_keyword_argument="data", persistence_store=_store(), config=config(), key_prefix="tahsil"
    )
    try:
        stored = guarded(data=data, call=call)
    except IdempotencyValidationError:
        raise IdempotencyConflict(
            "idempotency key already used with different request data", param="Idempotency-Key"
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise IdempotencyInProgress(
            "a request with this idempotency key is still in progress; retry shortly", param="Idempotency-Key"
        ) from None
    answer = unpack(stored)
    if stored.get("replayed"):
        answer["replayed"] = True
    return answer
