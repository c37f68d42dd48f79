"""Idempotency-Key semantics: a record per key in the idempotency table, claimed before the work runs.

The record format and its rules are Powertools Idempotency's DynamoDB persistence layer's, kept
byte for byte (records written by earlier versions, which used that layer, replay the same):
- the record's id is ``tahsil#`` + MD5 of the JSON of ``scope`` (merchant, mode, and the key), one prefix
  for every function, so a key is scoped to the account, not to one endpoint;
- ``validation`` is MD5 of the request (method, route, path, canonical JSON body): the same key with
  different parameters or on another endpoint is a 409 ``IDEMPOTENCY_KEY_REUSED``;
- the claim is one conditional PutItem of an ``INPROGRESS`` record: it succeeds when no record exists,
  when the record has expired, or when an in-progress record outlived the Lambda that held it
  (``in_progress_expiration``, the invocation's deadline in ms). A failed claim returns the record
  (``ReturnValuesOnConditionCheckFailure``); an in-progress one is a 409 ``IDEMPOTENCY_IN_PROGRESS``
  and nothing is stored; a completed one replays its answer, marked ``replayed``;
- the work's answer is stored with ``COMPLETED`` (``pack``: its JSON text in the original key order,
  deflated with a preset dictionary of the payment object's field names and base85-encoded, so a
  payment's record stays well under 1 KB, one write unit, and a replay sends the first response's bytes);
- records live 24 hours (TTL on ``expiration``); an exception from the work deletes the record, so a
  retry after a crash or a refusal runs again instead of replaying an error.
- **the answer rides with the effect.** ``call`` gets a ``Completion``: a domain call whose effect is one
  DynamoDB transaction puts ``Completion.action(answer)`` in it (conditional on the record still being
  ``INPROGRESS`` under this request's validation) and the record is then not written again. A crash after
  that commit leaves a completed record, never a lapsed lock over a done effect; a completed record found by
  the condition means another run answered first, and its answer is replayed.

Why not Powertools' own: its package imports boto3 (and s3transfer, multiprocessing with it), ~15 ms of
every cold start's CPU for two DynamoDB calls this module makes with the function's own botocore
client (docs/decisions/idempotency.md).
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import json
import time
import zlib
from collections.abc import Callable
from typing import Any

from tahsil.kernel.config import settings
from tahsil.kernel.errors import IdempotencyConflict, IdempotencyInProgress
from tahsil.store import aws

TTL_SECONDS = 24 * 60 * 60
KEY_PREFIX = "tahsil"  # Powertools' key_prefix in earlier versions: the ids of their records
INPROGRESS, COMPLETED = "INPROGRESS", "COMPLETED"
CLAIM_TRIES = 3  # a record that changes between the claim and its read is claimed again (Powertools: 1 + 2 retries)

_CLAIM = ("attribute_not_exists(#id) OR #expiry < :now OR "
          "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)")


def _digest(value: Any) -> str:
    """MD5 of the value's JSON with sorted keys, as Powertools hashes keys and payloads (not a secret: an id)."""
    return hashlib.md5(json.dumps(value, sort_keys=True).encode(), usedforsecurity=False).hexdigest()


_CONTEXT: contextvars.ContextVar[Any] = contextvars.ContextVar("tahsil_lambda_context", default=None)


def register_context(context: Any) -> None:
    """Keeps the invocation's Lambda context for ``run``: an in-progress record is free again once the
    invocation that wrote it has run out of time (its ``in_progress_expiration``)."""
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


class Completion:
    """The completion of one claimed record, as an action of the caller's own DynamoDB transaction."""

    def __init__(self, key: str, validation: str) -> None:
        self.key, self.validation = key, validation
        self.done = False

    def action(self, answer: dict[str, Any]) -> dict[str, Any]:
        return {"Update": {
            "TableName": settings().idempotency_table, "Key": {"id": {"S": self.key}},
            "UpdateExpression": "SET #data = :data, #expiry = :expiry, #status = :status",
            "ConditionExpression": "#status = :inprogress AND #validation = :validation",
            "ExpressionAttributeNames": {"#data": "data", "#expiry": "expiration", "#status": "status",
                                         "#validation": "validation"},
            "ExpressionAttributeValues": {":data": {"S": json.dumps(pack(answer), sort_keys=True)},
                                          ":expiry": {"N": str(int(time.time()) + TTL_SECONDS)},
                                          ":status": {"S": COMPLETED}, ":inprogress": {"S": INPROGRESS},
                                          ":validation": {"S": self.validation}},
        }}

    def stored(self) -> dict[str, Any] | None:
        """The answer completed under this key (by this run's transaction or another run's), or None."""
        record = aws.client("dynamodb").get_item(TableName=settings().idempotency_table, Key={"id": {"S": self.key}},
                                                 ConsistentRead=True).get("Item")
        if record is None or record.get("status", {}).get("S") != COMPLETED or "data" not in record:
            return None
        return unpack(json.loads(record["data"]["S"]))


def _takes_completion(call: Callable[..., dict[str, Any]]) -> bool:
    code = getattr(call, "__code__", None)
    return code is not None and code.co_argcount >= 1


def run(*, scope: list[str], request: dict[str, str], call: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """``call()`` once per key: its answer, or the stored answer of an earlier call (with ``replayed``).

    A ``call`` that takes one argument gets the ``Completion`` to put in its effect's transaction."""
    key = f"{KEY_PREFIX}#{_digest(scope)}"
    validation = _digest({**request, "body": _canonical(request.get("body", ""))})
    for _ in range(CLAIM_TRIES):
        record = _claim(key, validation)
        if record is None:
            return _perform(key, validation, call)
        if record.get("validation", {}).get("S") != validation:
            raise IdempotencyConflict("idempotency key already used with different request data", param="Idempotency-Key")
        now = time.time()
        if int(record["expiration"]["N"]) < int(now):
            continue  # expired since the claim was refused: claim it again
        status = record["status"]["S"]
        if status == INPROGRESS:
            deadline = record.get("in_progress_expiration")
            if deadline is not None and int(deadline["N"]) < int(now * 1000):
                continue  # its Lambda ran out of time since: claim it again
            break
        if status == COMPLETED:
            answer = unpack(json.loads(record["data"]["S"]))
            answer["replayed"] = True
            return answer
        raise RuntimeError(f"idempotency record {key} has an unknown status {status!r}")
    raise IdempotencyInProgress(
        "a request with this idempotency key is still in progress; retry shortly", param="Idempotency-Key"
    )


def _claim(key: str, validation: str) -> dict[str, Any] | None:
    """Write the ``INPROGRESS`` record: None when this request holds the key now, else the record that does."""
    client = aws.client("dynamodb")
    now = time.time()
    item = {"id": {"S": key}, "expiration": {"N": str(int(now) + TTL_SECONDS)}, "status": {"S": INPROGRESS},
            "validation": {"S": validation}}
    context = _CONTEXT.get()
    if hasattr(context, "get_remaining_time_in_millis"):  # the record is free again once this invocation timed out
        item["in_progress_expiration"] = {"N": str(int(now * 1000) + context.get_remaining_time_in_millis())}
    try:
        client.put_item(
            TableName=settings().idempotency_table, Item=item, ConditionExpression=_CLAIM,
            ExpressionAttributeNames={"#id": "id", "#expiry": "expiration", "#status": "status",
                                      "#in_progress_expiry": "in_progress_expiration"},
            ExpressionAttributeValues={":now": {"N": str(int(now))}, ":now_in_millis": {"N": str(int(now * 1000))},
                                       ":inprogress": {"S": INPROGRESS}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as exc:
        record: dict[str, Any] | None = exc.response.get("Item")
        if record is None:
            record = client.get_item(TableName=settings().idempotency_table, Key={"id": {"S": key}},
                                     ConsistentRead=True).get("Item")
        # gone since (a failed call deleted it): an expired stand-in, so the caller claims again
        return record or {"expiration": {"N": "0"}, "status": {"S": INPROGRESS}, "validation": {"S": validation}}
    return None


def _perform(key: str, validation: str, call: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    client, table = aws.client("dynamodb"), settings().idempotency_table
    completion = Completion(key, validation)
    try:
        answer = call(completion) if _takes_completion(call) else call()
    except Exception:
        if completion.done:
            raise  # the answer is stored with the effect: the record stays

        # the key is free again: a retry runs the work (the exception is the answer to this request)
        try:  # only our own lock: a record another run completed meanwhile keeps its answer
            client.delete_item(TableName=table, Key={"id": {"S": key}}, ConditionExpression="#status = :inprogress",
                               ExpressionAttributeNames={"#status": "status"},
                               ExpressionAttributeValues={":inprogress": {"S": INPROGRESS}})
        except client.exceptions.ConditionalCheckFailedException:
            pass
        raise
    if completion.done:
        return answer  # stored in the effect's own transaction
    client.update_item(
        TableName=table, Key={"id": {"S": key}},
        UpdateExpression="SET #data = :data, #expiry = :expiry, #status = :status, #validation = :validation",
        ExpressionAttributeNames={"#data": "data", "#expiry": "expiration", "#status": "status",
                                  "#validation": "validation"},
        ExpressionAttributeValues={":data": {"S": json.dumps(pack(answer), sort_keys=True)},
                                   ":expiry": {"N": str(int(time.time()) + TTL_SECONDS)},
                                   ":status": {"S": COMPLETED}, ":validation": {"S": validation}},
    )
    return answer
