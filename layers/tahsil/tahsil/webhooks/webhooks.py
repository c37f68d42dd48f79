"""Webhooks: endpoints, signed deliveries, retries, and the delivery log.

Pipeline (see docs/webhooks.md):
  state change + event row (one transaction)
    -> DynamoDB stream -> fan_out(): one SQS message per subscribed endpoint (nothing written)
    -> SQS -> attempt #1 (deliver function, a batch at a time): creates the delivery row, and adds to
       the delivery counters in the same transaction (``tahsil.store.counters``, scope DLV#<merchant>#<mode>)
    -> on failure, a Step Functions execution: wait per schedule -> attempt -> decide -> ...

Rows (PaymentsTable):
  EVTS#<merchant>#<mode> / <evt>      the event (outbox row; ``tahsil.kernel.events``): ``deliveries_total = 0``
                                      when nobody subscribes, ``dlv_failed`` (a string set) the endpoints whose
                                      delivery failed for good. Rows written before this layout: EVT#<evt> / EVT
                                      (listed through by_owner, after the partition's rows: all older)
  in the event's delivery partition (one query reads an event's whole log):
  EVT#<evt> / DLV#<endpoint>          one delivery (in no index): status, attempts, round, next retry, ``of``
                                      (the event's endpoints at fan-out); the attempt that delivered
                                      (``delivered_attempt``: time, URL, status code...)
  EVT#<evt> / DLV#<endpoint>#<round>#<nnn>   one attempt that did not deliver (or one a redeliver moved out)
Endpoints (CredentialsTable): WHE#<id> / WHE, the signing secret sealed (AES-GCM under KMS).
"""

from __future__ import annotations

import base64
import collections.abc
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tahsil.kernel import clock, versions
from tahsil.kernel.errors import ConcurrentUpdate, InvalidRequest, NotFound
from tahsil.kernel.events import (
    RequestContext,
    delivery_partition,
    event_id_bound,
    event_partition,
    event_row,
    payload_of,
    payload_text,
)
from tahsil.kernel.ids import looks_like, new_id
from tahsil.kernel.principal import Principal
from tahsil.kernel.telemetry import metrics
from tahsil.store import aws, counters, crypto, dal
from tahsil.webhooks import ssrf

EVENT_TYPES = (
    "payment.authorized", "payment.captured", "payment.voided", "payment.refunded", "payment.failed",
    "payment.expired", "payment.authorization_expiring",
    # 3-D Secure: the payment waits for the shopper to authenticate (its next_action says where to send them).
    "payment.requires_action",
    # Live payments through a processor connector: a capture, void or refund the processor refused after acknowledging it.
    "payment.capture_failed", "payment.void_failed", "payment.refund_failed",
    "payment_intent.created", "payment_intent.succeeded", "payment_intent.canceled",
    "payment_intent.payment_failed", "payment_intent.expired",
    # The account: the payout bank account changed (live mode; old and new last four digits, tahsil.console.profile).
    "account.updated",
)
TEST_EVENT = "webhook_endpoint.test"
ROTATION_OVERLAP = dt.timedelta(hours=24)
DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)  # seed 004: after the immediate attempt
USER_AGENT = "Tahsil-Webhooks/1.0 (+https://www.standardwebhooks.com/)"


@functools.cache
def schedule() -> tuple[int, ...]:
    """Seconds to wait before each retry (template parameter WebhookRetrySchedule)."""
    raw = os.environ.get("WEBHOOK_RETRY_SCHEDULE") or ",".join(map(str, DEFAULT_SCHEDULE))
    try:
        waits = tuple(int(s) for s in raw.split(",") if s.strip())
    except ValueError as exc:
        raise RuntimeError(f"WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, got {raw!r}") from exc
    if not waits or any(w < 0 for w in waits):
        raise RuntimeError("WEBHOOK_RETRY_SCHEDULE needs at least one non-negative wait")
    return waits


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"missing environment variable {name}")
    return value


def _local_runtime() -> bool:
    return os.environ.get("TAHSIL_LOCAL_RUNTIME") == "true"


def check_url(url: str, mode: str) -> ssrf.Target:
    """Live: https to public addresses only. Test mode in the local runtime may also use http://localhost."""
    return ssrf.check_url(url, live=mode == "live", allow_loopback_http=mode == "test" and _local_runtime())


# ------------------------------------------------------------------ secrets and signatures


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _seal(secret: str, endpoint_id: str) -> dict[str, str]:
    return crypto.secrets_vault.encrypt(secret, context=f"webhook/{endpoint_id}")


def _open(sealed: dict[str, str], endpoint_id: str) -> str:
    return crypto.secrets_vault.decrypt(sealed, context=f"webhook/{endpoint_id}")


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def legacy_signature(secret: str, body: bytes) -> str:
    """Seed 002's ``X-Webhook-Signature``: hex HMAC-SHA256 of the body, keyed with the secret string."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _overlap_active(endpoint: dict[str, Any], now: dt.datetime) -> bool:
    until = endpoint.get("previous_secret_expires_at")
    return bool(endpoint.get("previous_secret_sealed") and until and clock.iso(now) < until)


def signed_headers(endpoint: dict[str, Any], msg_id: str, body: bytes, now: dt.datetime) -> dict[str, str]:
    """Both header styles. During a rotation's overlap, ``webhook-signature`` carries a signature
    under each secret, and seed 002's single ``X-Webhook-Signature`` stays under the previous
    secret, the one the receiver has, until the overlap ends (or the merchant ends it early)."""
    current = _open(endpoint["secret_sealed"], endpoint["id"])
    secrets_in_use = [current]
    legacy_secret = current
    if _overlap_active(endpoint, now):
        previous = _open(endpoint["previous_secret_sealed"], endpoint["id"])
        secrets_in_use.append(previous)
        legacy_secret = previous
    timestamp = int(now.timestamp())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(standard_signature(s, msg_id, timestamp, body) for s in secrets_in_use),
        "X-Webhook-Signature": legacy_signature(legacy_secret, body),
    }


# ------------------------------------------------------------------ endpoints


def endpoint_view(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"], "object": "webhook_endpoint", "name": item.get("name"), "url": item["url"],
        "description": item.get("description"), "enabled_events": item["enabled_events"],
        "status": item["status"], "disabled_reason": item.get("disabled_reason"),
        "livemode": item["mode"] == "live", "api_version": item.get("api_version"),
        "secret_rotated_at": item.get("secret_rotated_at"),
        "previous_secret_expires_at": item.get("previous_secret_expires_at") if _overlap_active(item, clock.now()) else None,
        "created_at": item["created_at"], "updated_at": item.get("updated_at"),
    }


def _check_version(version: str) -> str:
    if version not in versions.NAMES:
        raise InvalidRequest(f"api_version: unknown API version {version!r}; known versions: {', '.join(versions.NAMES)}",
                             param="api_version")
    return version


def _check_events(events: list[str]) -> list[str]:
    if events == ["*"]:
        return events
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        raise InvalidRequest(f"unknown event types {unknown}; use ['*'] or some of {list(EVENT_TYPES)}",
                             param="enabled_events")
    return sorted(set(events))


def create_endpoint(p: Principal, *, name: str, url: str, enabled_events: list[str], description: str | None,
                    api_version: str | None = None) -> dict[str, Any]:
    """``api_version``: what the endpoint's events are rendered for; default the account's version."""
    version = _check_version(api_version) if api_version else p.api_version
    check_url(url, p.mode)
    now = clock.now()
    endpoint_id = new_id("we")
    secret = new_secret()
    item = {
        "pk": f"WHE#{endpoint_id}", "sk": "WHE",
        "gsi1pk": f"WHE#{p.merchant_id}#{p.mode}", "gsi1sk": f"{clock.sortable(now)}#{endpoint_id}",
        "id": endpoint_id, "merchant_id": p.merchant_id, "mode": p.mode, "name": name, "url": url,
        "description": description, "enabled_events": _check_events(enabled_events), "status": "enabled",
        "api_version": version, "secret_sealed": _seal(secret, endpoint_id), "created_at": clock.iso(now),
    }
    dal.put(dal.credentials_table(), item, condition="attribute_not_exists(pk)")
    return {**endpoint_view(item), "secret": secret}


def load_endpoint(p: Principal, endpoint_id: str) -> dict[str, Any]:
    if not looks_like("we", endpoint_id):
        raise InvalidRequest("id must be a webhook endpoint id (we_...)", param="id")
    item = dal.get(dal.credentials_table(), f"WHE#{endpoint_id}", "WHE")
    if item is None or item["merchant_id"] != p.merchant_id or item["mode"] != p.mode or item["status"] == "deleted":
        raise NotFound("webhook endpoint not found", param="id")
    return item


def list_endpoints(p: Principal) -> dict[str, Any]:
    items = dal.query_owner(dal.credentials_table(), f"WHE#{p.merchant_id}#{p.mode}", index="by_merchant",
                            newest_first=True)
    return {"webhook_endpoints": [endpoint_view(i) for i in items if i["status"] != "deleted"]}


def update_endpoint(p: Principal, endpoint_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    item = load_endpoint(p, endpoint_id)
    fields: dict[str, Any] = {"updated_at": clock.iso(clock.now())}
    if "url" in changes:
        check_url(changes["url"], p.mode)
        fields["url"] = changes["url"]
    if "enabled_events" in changes:
        fields["enabled_events"] = _check_events(changes["enabled_events"])
    for name in ("name", "description"):
        if name in changes:
            fields[name] = changes[name]
    if "enabled" in changes:
        fields["status"] = "enabled" if changes["enabled"] else "disabled"
        fields["disabled_reason"] = None if changes["enabled"] else "disabled by the merchant"
    if changes.get("api_version") is not None:
        fields["api_version"] = _check_version(changes["api_version"])
    if changes.get("end_secret_overlap"):
        # From now on both header styles are signed with the current secret only.
        fields["previous_secret_sealed"] = None
        fields["previous_secret_expires_at"] = None
    _update_endpoint_fields(item, fields)
    return endpoint_view({**item, **fields})


def _update_endpoint_fields(item: dict[str, Any], fields: dict[str, Any], *, sealed_as_read: bool = False) -> None:
    """Write ``fields`` on the endpoint. With ``sealed_as_read``, only if its secret is still the one ``item``
    holds (its ciphertext, unique per seal): a concurrent rotation makes this one a 409, never a lost secret."""
    present = {k: v for k, v in fields.items() if v is not None}
    absent = [k for k, v in fields.items() if v is None]
    names = {f"#{k}": k for k in fields} | {"#st": "status"}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in present)
    if absent:
        expression += " REMOVE " + ", ".join(f"#{k}" for k in absent)
    condition = "attribute_exists(pk) AND #st <> :deleted"
    extra: dict[str, Any] = {}
    if sealed_as_read:
        names |= {"#sealed": "secret_sealed", "#ct": "ciphertext"}
        condition += " AND #sealed.#ct = :read_ct"
        extra["read_ct"] = item["secret_sealed"]["ciphertext"]
    try:
        dal.update(dal.credentials_table(), item["pk"], "WHE", expression, names=names,
                   vals=dal.values(**present, **extra, deleted="deleted"), condition=condition)
    except dal.ConditionFailed:
        if sealed_as_read:
            current = dal.get(dal.credentials_table(), item["pk"], "WHE")
            if current is not None and current["status"] != "deleted":
                raise ConcurrentUpdate("the secret was rotated by another request at the same moment: its secret is "
                                       "the one in force; rotate again for a new one") from None
        raise NotFound("webhook endpoint not found", param="id") from None


def delete_endpoint(p: Principal, endpoint_id: str) -> dict[str, Any]:
    item = load_endpoint(p, endpoint_id)
    _update_endpoint_fields(item, {"status": "deleted", "updated_at": clock.iso(clock.now())})
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def rotate_secret(p: Principal, endpoint_id: str) -> dict[str, Any]:
    """A new secret, shown once; the old one keeps signing beside it for 24 hours."""
    item = load_endpoint(p, endpoint_id)
    now = clock.now()
    secret = new_secret()
    _update_endpoint_fields(item, {
        "secret_sealed": _seal(secret, endpoint_id),
        "previous_secret_sealed": item["secret_sealed"],
        "previous_secret_expires_at": clock.iso(now + ROTATION_OVERLAP),
        "secret_rotated_at": clock.iso(now),
        "updated_at": clock.iso(now),
    }, sealed_as_read=True)  # two rotations at once: one wins, the other is a 409 (its secret was never in force)
    return {**endpoint_view({**item, "secret_rotated_at": clock.iso(now)}), "secret": secret,
            "previous_secret_expires_at": clock.iso(now + ROTATION_OVERLAP)}


def send_test(p: Principal, endpoint_id: str, ctx: RequestContext) -> dict[str, Any]:
    """Write a test event aimed at this endpoint only; it travels the real pipeline."""
    item = load_endpoint(p, endpoint_id)
    now = clock.now()
    obj = {"id": endpoint_id, "object": "webhook_endpoint", "url": item["url"], "message": "This is a test event from Tahsil."}
    row = event_row(p, ctx, type_=TEST_EVENT, obj=obj, sequence=1, previous={}, now=now)
    row["target_endpoint_id"] = endpoint_id
    dal.put(dal.payments_table(), row, condition="attribute_not_exists(pk)")
    return event_view(row, [])


# ------------------------------------------------------------------ fan-out


def _subscribed(endpoint: dict[str, Any], event_type: str) -> bool:
    return endpoint["status"] == "enabled" and (endpoint["enabled_events"] == ["*"] or event_type in endpoint["enabled_events"])


def fan_out(event: dict[str, Any]) -> int:
    """Queue the first attempt of each of the event's deliveries. Safe to run twice.

    Nothing is written for an event with endpoints: its first attempt creates the delivery row (the
    message says how many endpoints the event went to, ``of``). An event nobody subscribes to is marked
    ``deliveries_total = 0`` (a SET: idempotent), so the events API can tell it from one not fanned out yet.
    """
    table = dal.payments_table()
    # the stream is the source, the table the truth; an event row never changes what fan-out reads, so an
    # eventually consistent read (half the price) does, with a strongly consistent one if it does not see it yet
    key = (event["pk"], event.get("sk") or "EVT")
    stored = dal.get(table, *key, consistent=False) or dal.get(table, *key)
    if stored is None:
        return 0
    target = stored.get("target_endpoint_id")
    candidates = dal.query_owner(dal.credentials_table(), f"WHE#{stored['merchant_id']}#{stored['mode']}", index="by_merchant")
    if target:  # a test event goes to the endpoint it was sent for, whatever it subscribes to
        endpoints = [e for e in candidates if e["id"] == target and e["status"] == "enabled"]
    else:
        endpoints = [e for e in candidates if _subscribed(e, stored["type"])]
    if not endpoints:
        dal.update(table, stored["pk"], stored["sk"], "SET deliveries_total = :n", vals=dal.values(n=0))
    _enqueue([(stored["id"], e["id"], 0) for e in endpoints], of=len(endpoints),
             owner=(stored["merchant_id"], stored["mode"]))
    return len(endpoints)


def _enqueue(items: list[tuple[str, str, int]], *, of: int | None = None, owner: tuple[str, str] | None = None) -> None:
    """Queue first attempts. ``owner`` (merchant, mode) says where the event row is; messages queued before
    events moved into their merchant's partition have none, and their events are found under the old key."""
    sqs = aws.client("sqs")
    where = {"merchant_id": owner[0], "mode": owner[1]} if owner else {}
    for start in range(0, len(items), 10):
        chunk = items[start:start + 10]
        answer = sqs.send_message_batch(QueueUrl=_env("DELIVERY_QUEUE_URL"), Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"event_id": e, "endpoint_id": w, "round": r, **where,
                                                      **({"of": of} if of is not None else {})})}
            for i, (e, w, r) in enumerate(chunk)
        ])
        if answer.get("Failed"):
            raise RuntimeError(f"could not queue {len(answer['Failed'])} deliveries")


# ------------------------------------------------------------------ attempts


def body_for(endpoint: dict[str, Any] | None, event: dict[str, Any]) -> bytes:
    """The bytes to sign and send: the event rendered for the endpoint's API version.

    Deterministic (sorted keys, compact), so every retry sends and signs the same bytes.
    """
    version = (endpoint or {}).get("api_version") or versions.LATEST
    if version == versions.LATEST:
        return payload_text(event).encode()
    payload = {**payload_of(event), "merchant_id": event["merchant_id"]}  # seed 002's data.merchant_id
    rendered = versions.render(payload, version, "event")
    return json.dumps(rendered, separators=(",", ":"), sort_keys=True).encode()



DELIVERED_ATTEMPT = "delivered_attempt"
ATTEMPT_FIELDS = ("round", "number", "at", "url", "status_code", "latency_ms", "error_class", "response_prefix",
                  "next_retry_at")


def attempt_sk(endpoint_id: str, round_: int, number: int) -> str:
    return f"DLV#{endpoint_id}#{round_:03d}#{number:03d}"


def attempt_history(summary: dict[str, Any] | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One delivery's attempts, oldest first: its attempt rows (``rows`` may hold other rows of the event's
    partition) and the delivering attempt kept in the delivery row (``summary``)."""
    if summary is None:
        return []
    prefix = f"{summary['sk']}#"
    tries = [{k: r.get(k) for k in ATTEMPT_FIELDS} for r in rows if r["sk"].startswith(prefix)]
    if summary.get(DELIVERED_ATTEMPT):
        tries.append({k: summary[DELIVERED_ATTEMPT].get(k) for k in ATTEMPT_FIELDS})
    return sorted(tries, key=lambda t: (int(t["round"]), int(t["number"])))


COUNTER_TTL = dt.timedelta(days=35)  # the overview's window is at most 31 days
RESOLUTIONS = (counters.MINUTE,)  # per minute only: a batch adds to one counter item (readers sum minutes)
FINAL = ("delivered", "failed")


@dataclass
class Message:
    """One attempt to make: what the delivery queue and the retry state machine carry."""

    event_id: str
    endpoint_id: str
    number: int
    round: int
    waits: tuple[int, ...] | None = None
    of: int | None = None  # how many endpoints the event was fanned out to (first attempts only)
    merchant_id: str | None = None  # where the event row is; None: a message from before the events'
    mode: str | None = None  # partitions, whose event is under its old key


def counter_fields(event_type: str, endpoint_id: str, *, started: bool, ok: bool, failed: bool) -> dict[str, int]:
    """What one attempt adds to the delivery counters (``tahsil.store.counters``, scope ``DLV#<merchant>#<mode>``).

    ``n`` deliveries started (a round's first attempt), ``at`` attempts, ``dd`` delivered, ``df`` failed for
    good; ``n``, ``dd`` and ``df`` per endpoint too (``n.<endpoint>`` ...); ``pcd`` delivered payment.captured
    events.
    """
    counts = {"at": 1}
    for name, flag in (("n", started), ("dd", ok), ("df", failed)):
        if flag:
            counts[name] = 1
            counts[f"{name}.{endpoint_id}"] = 1
    if ok and event_type == "payment.captured":
        counts["pcd"] = 1
    return counts


@dataclass
class _Plan:
    message: Message
    unit: counters.Unit
    outcome: str
    wait: int | None
    disabled_endpoint: bool


def _prepare(message: Message) -> _Plan | None:
    """Make the attempt (the HTTP POST) and compose its writes; None when there is nothing to do."""
    waits = tuple(message.waits) if message.waits else schedule()
    number, round_, endpoint_id, event_id = message.number, message.round, message.endpoint_id, message.event_id
    table = dal.payments_table()
    pk, sk = f"EVT#{event_id}", f"DLV#{endpoint_id}"
    delivery = dal.get(table, pk, sk)
    if delivery is None:
        if number != 1 or round_ != 0:
            return None  # later attempts and new rounds always follow a row
    elif (number == 1 and delivery["round"] == round_ and delivery["attempts"] == 1 and delivery["status"] == "retrying"
          and delivery.get("next_retry_at")):
        # Recorded, but the retries may not have started (the message came back): start them again (a no-op if
        # they run: the execution is named after the delivery).
        left = dt.datetime.fromisoformat(delivery["next_retry_at"].replace("Z", "+00:00")) - clock.now()
        return _Plan(message, counters.Unit(actions=[]), "retry", max(0, int(left.total_seconds())), False)
    elif delivery["round"] != round_ or delivery["status"] in FINAL or delivery["attempts"] >= number:
        return None
    # Where the event row is: the message says (a later attempt's delivery row says it too); a first attempt
    # queued before events moved into their merchant's partition says nothing, and its event has the old key.
    merchant_id, mode = message.merchant_id or (delivery or {}).get("merchant_id"), message.mode or (delivery or {}).get("mode")
    event = find_event(merchant_id, mode, event_id)
    if event is None:
        return None
    # the endpoint decides the attempt (enabled? which URL? which secrets sign it?): strongly consistent, so a
    # delivery right after a disable, a URL change or a rotation follows it
    endpoint = dal.get(dal.credentials_table(), f"WHE#{endpoint_id}", "WHE")
    now = clock.now()
    body = body_for(endpoint, event)
    if endpoint is None or endpoint["status"] != "enabled":
        answer = ssrf.Answer(status=None, body_prefix=b"", elapsed_ms=0, error_class="endpoint_disabled")
    else:
        try:
            target = check_url(endpoint["url"], endpoint["mode"])
            answer = ssrf.post(target, body, signed_headers(endpoint, event_id, body, now))
        except ssrf.UnsafeUrl as exc:
            answer = ssrf.Answer(status=None, body_prefix=b"", elapsed_ms=0, error_class=f"unsafe_url: {exc.message}")

    ok = answer.status is not None and 200 <= answer.status < 300
    gone = answer.status == 410
    final_failure = not ok and (gone or number >= 1 + len(waits) or answer.error_class == "endpoint_disabled")
    status = "delivered" if ok else ("failed" if final_failure else "retrying")
    wait = None if ok or final_failure else waits[number - 1]
    next_retry_at = clock.iso(now + dt.timedelta(seconds=wait)) if wait is not None else None
    url = endpoint["url"] if endpoint else (delivery or {}).get("url", "")

    facts = {
        "round": round_, "number": number, "at": clock.iso(now), "url": url,
        "status_code": answer.status, "latency_ms": answer.elapsed_ms, "error_class": answer.error_class,
        "response_prefix": answer.body_prefix[:1024].decode("utf-8", "replace"), "next_retry_at": next_retry_at,
    }
    fields = {"status": status, "attempts": number, "last_status_code": answer.status, "last_error": answer.error_class,
              "last_attempt_at": clock.iso(now), "next_retry_at": next_retry_at,
              "delivered_at": clock.iso(now) if ok else None,
              # The attempt that delivered is recorded in the delivery row itself (no row of its own: one write
              # less on the common path); redeliver() moves it to an attempt row before starting a new round.
              DELIVERED_ATTEMPT: {k: v for k, v in facts.items() if v is not None} if ok else None}
    started = clock.iso(now) if number == 1 else (delivery or {}).get("started_at")
    if number == 1:
        fields["started_at"] = started
    actions: list[dict[str, Any]] = []
    if delivery is None:
        # The first attempt creates the delivery row, in its outcome: one conditional put (a second
        # worker, or this message again, finds it there and writes nothing).
        row = {"pk": pk, "sk": sk, "event_id": event_id, "event_type": event["type"], "endpoint_id": endpoint_id,
               "merchant_id": event["merchant_id"], "mode": event["mode"], "url": url, "round": round_,
               "created_at": clock.iso(now), **({"of": message.of} if message.of else {}), **fields}
        actions.append(dal.put_action(table, {k: v for k, v in row.items() if v is not None},
                                      condition="attribute_not_exists(sk)"))
    else:
        present = {k: v for k, v in fields.items() if v is not None}
        absent = [k for k, v in fields.items() if v is None]
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in present)
        if absent:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in absent)
        actions.append(dal.update_action(table, pk, sk, expression, condition="#attempts = :before AND #round = :round",
                                         names={f"#{k}": k for k in fields} | {"#round": "round"},
                                         vals=dal.values(**present, before=number - 1, round=round_)))
    if not ok:
        attempt_row = {"pk": pk, "sk": attempt_sk(endpoint_id, round_, number), "event_id": event_id,
                       "endpoint_id": endpoint_id, **facts}
        actions.append(dal.put_action(table, attempt_row, condition="attribute_not_exists(sk)"))
    if final_failure:  # rare: the event row says which endpoints failed (a set: idempotent), for the list filter
        actions.append(dal.update_action(table, event["pk"], event["sk"], "ADD dlv_failed :ep", condition=None,
                                         vals=dal.values(ep={endpoint_id})))
    if gone and endpoint is not None:
        actions.append(dal.update_action(dal.credentials_table(), endpoint["pk"], "WHE",
                                         "SET #st = :disabled, disabled_reason = :why, updated_at = :now",
                                         condition="#st = :enabled", names={"#st": "status"},
                                         vals=dal.values(disabled="disabled", enabled="enabled", now=clock.iso(now),
                                                         why="the endpoint answered 410 Gone")))
    unit = counters.Unit(actions=actions)
    if started:  # rows written before the counters existed have no start: they are not counted (no backfill)
        unit.scope = counters.delivery_scope(event["merchant_id"], event["mode"])
        unit.moment = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
        unit.ttl = int((unit.moment + COUNTER_TTL).timestamp())
        unit.counts = counter_fields(event["type"], endpoint_id, started=number == 1, ok=ok, failed=final_failure)
        unit.latest = {"lr": {"at": clock.iso(now), "event_id": event_id, "event_type": event["type"],
                              "endpoint_id": endpoint_id, "round": round_, "number": number,
                              "status_code": answer.status, "error_class": answer.error_class,
                              "latency_ms": answer.elapsed_ms}}
        if ok and event["type"] == "payment.captured":
            unit.latest["pc"] = {"at": clock.iso(now), "event_id": event_id, "object_id": event["object_id"]}
    outcome = "delivered" if ok else ("failed" if final_failure else "retry")
    return _Plan(message, unit, outcome, wait, gone and endpoint is not None)


MAX_PARALLEL_ATTEMPTS = 10  # the delivery queue's BatchSize


def attempts(messages: list[Message]) -> list[dict[str, Any] | None]:
    """Make these attempts, then record them all in one transaction with the delivery counters.

    Per message: {"outcome": delivered | retry | failed | skipped, "wait_seconds": ...}, or None when the
    record could not be written (transaction conflicts that outlasted the retries): the caller retries
    the message. Idempotent: an attempt that was already made (a duplicate message or a retried task)
    is skipped, and so is one for a delivery that a redeliver started over; a message redelivered after
    its write is skipped too, so nothing is counted twice.
    """
    results: list[dict[str, Any] | None] = [{"outcome": "skipped"} for _ in messages]
    # The attempts of a batch run side by side: each may wait up to ssrf's 15 s total timeout for a slow
    # endpoint, and ten in a row would outlast the function's timeout (and bill every wait).
    if len(messages) > 1:
        with ThreadPoolExecutor(max_workers=min(len(messages), MAX_PARALLEL_ATTEMPTS),
                                thread_name_prefix="attempt") as pool:
            prepared = list(pool.map(_prepare, messages))
    else:
        prepared = [_prepare(m) for m in messages]
    plans: list[tuple[int, _Plan]] = [(i, plan) for i, plan in enumerate(prepared) if plan is not None]
    for i, plan in plans:
        if not plan.unit.actions:
            results[i] = {"outcome": plan.outcome, "wait_seconds": plan.wait}
    plans = [(i, plan) for i, plan in plans if plan.unit.actions]
    written = counters.commit(dal.payments_table(), [plan.unit for _, plan in plans], resolutions=RESOLUTIONS)
    for (i, plan), done in zip(plans, written, strict=True):
        if done is None:
            results[i] = None
        elif done:
            if plan.disabled_endpoint:
                metrics.add_metric(name="WebhookEndpointDisabled", unit="Count", value=1)  # the alarm of that name
            results[i] = {"outcome": plan.outcome, "wait_seconds": plan.wait}
    return results


def attempt(event_id: str, endpoint_id: str, number: int, round_: int,
            waits: tuple[int, ...] | list[int] | None = None, of: int | None = None, *,
            merchant_id: str | None = None, mode: str | None = None) -> dict[str, Any]:
    """Make attempt ``number`` of a delivery, record it, and say what comes next (see ``attempts``).

    ``waits`` is the retry schedule (seconds before attempts 2, 3, ...); it travels in the
    state machine's input, so a test can shorten it.
    """
    [result] = attempts([Message(event_id, endpoint_id, number, round_, tuple(waits) if waits else None, of,
                                 merchant_id, mode)])
    if result is None:
        raise RuntimeError(f"could not record attempt {number} of {event_id} to {endpoint_id} (write conflicts)")
    return result


def start_retries(event_id: str, endpoint_id: str, round_: int, wait_seconds: int, *,
                  merchant_id: str | None = None, mode: str | None = None) -> None:
    """Hand the delivery to Step Functions; the execution name makes a second start a no-op."""
    client = aws.client("stepfunctions")
    state = {"event_id": event_id, "endpoint_id": endpoint_id, "round": round_, "attempt": 2,
             "schedule": list(schedule()), "wait_seconds": wait_seconds,
             **({"merchant_id": merchant_id, "mode": mode} if merchant_id and mode else {})}
    name = f"{event_id}-{endpoint_id}-{round_}"[:80]
    try:
        client.start_execution(stateMachineArn=_env("RETRY_STATE_MACHINE_ARN"), name=name, input=json.dumps(state))
    except client.exceptions.ExecutionAlreadyExists:
        pass


def retry_step(state: dict[str, Any]) -> dict[str, Any]:
    """One Step Functions task: attempt, then tell the state machine whether to wait again."""
    number = int(state["attempt"])
    waits = [int(w) for w in state.get("schedule") or schedule()]
    result = attempt(state["event_id"], state["endpoint_id"], number, int(state["round"]), waits,
                     merchant_id=state.get("merchant_id"), mode=state.get("mode"))
    out = {**state, "attempt": number + 1, "outcome": result["outcome"]}
    if result["outcome"] == "retry":
        out["wait_seconds"] = result["wait_seconds"]
    return out


# ------------------------------------------------------------------ events API


def is_summary(row: dict[str, Any]) -> bool:
    """A delivery row (``DLV#<endpoint>``), not one of its attempt rows."""
    return row["sk"].startswith("DLV#") and row["sk"].count("#") == 1


def delivery_summary(item: dict[str, Any], summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The events API's ``delivery``, from the event's delivery rows.

    An event with endpoints has nothing written about them until a first attempt creates a delivery
    row, which says how many endpoints the event went to (``of``). An event nobody subscribed to says
    ``deliveries_total = 0``. Rows written before this layout are read the same (their event row kept
    ``deliveries_total``).
    """
    legacy = item.get("deliveries_total")
    if summaries:
        total: int | None = max([len(summaries), int(legacy or 0)] + [int(r.get("of") or 0) for r in summaries])
    else:
        total = None if legacy is None else int(legacy)
    finished = sum(1 for r in summaries if r["status"] in FINAL)
    failed = sum(1 for r in summaries if r["status"] == "failed")
    if total is None:
        status = "pending"
    elif total == 0:
        status = "no_endpoints"
    elif failed:
        status = "failed"
    else:
        status = "delivered" if finished >= total else "pending"
    return {"status": status, "endpoints": total, "finished": finished, "failed": failed}


def event_view(item: dict[str, Any], summaries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The event as the API shows it; ``summaries``: its delivery rows (read here when not given)."""
    if summaries is None:
        summaries = [r for r in dal.query_partition(dal.payments_table(), delivery_partition(item["id"]), "DLV#")
                     if is_summary(r)]
    payload = payload_of(item)
    payload["delivery"] = delivery_summary(item, summaries)
    return payload


def find_event(merchant_id: str | None, mode: str | None, event_id: str) -> dict[str, Any] | None:
    """An event row: a GetItem in the merchant's and mode's partition (another's id is simply not there); a
    row of the older layout (``EVT#<id>`` / ``EVT``) only when that misses, and only if it is theirs. Without
    a merchant and mode (a message queued before this layout), the older key alone."""
    table = dal.payments_table()
    if merchant_id and mode:
        # an event's payload never changes: an eventually consistent read, then a strong one if it misses
        key = (event_partition(f"{merchant_id}#{mode}"), event_id)
        item = dal.get(table, *key, consistent=False) or dal.get(table, *key)
        if item is not None:
            return item
    legacy = dal.get(table, delivery_partition(event_id), "EVT")
    if legacy is None or (merchant_id and mode and (legacy["merchant_id"] != merchant_id or legacy["mode"] != mode)):
        return None
    return legacy


def load_event(p: Principal, event_id: str) -> dict[str, Any]:
    if not looks_like("evt", event_id):
        raise InvalidRequest("id must be an event id (evt_...)", param="id")
    item = find_event(p.merchant_id, p.mode, event_id)
    if item is None:
        raise NotFound("event not found", param="id")
    return item


def get_event(p: Principal, event_id: str) -> dict[str, Any]:
    """``GET /v1/events/{id}``: a GetItem for the event, a Query for its delivery rows."""
    item = load_event(p, event_id)
    return event_view(item)


def owner_events(owner: str, *, newest_first: bool = True, after: dict[str, Any] | None = None,
                 since: dt.datetime | None = None, before: dt.datetime | None = None,
                 filter_expression: str | None = None, names: dict[str, str] | None = None,
                 vals: dict[str, Any] | None = None, page_size: int = 100) -> collections.abc.Iterator[dict[str, Any]]:
    """A merchant's events in one mode (``owner``: ``<merchant>#<mode>``), newest first (or oldest), lazily.

    Created at or after ``since`` and before ``before``; after the event row ``after`` (a cursor). The
    partition ``EVTS#<owner>`` is read by sort key (event ids sort by time). Rows of the older layout are all
    older than any in the partition: newest first, they follow it (through the ``by_owner`` index, read
    only once the partition is exhausted); oldest first, they come before it.
    """
    table = dal.payments_table()
    legacy_after = after is not None and after["sk"] == "EVT"

    def current() -> collections.abc.Iterator[dict[str, Any]]:
        if newest_first and legacy_after:
            return  # the cursor is older than every row of the partition
        start = None if legacy_after or after is None else after["sk"]
        while True:
            rows, start = dal.query_page(table, event_partition(owner), newest_first=newest_first,
                                         sk_from=event_id_bound(since) if since else None,
                                         sk_to=event_id_bound(before) if before else None, start_sk=start,
                                         filter_expression=filter_expression, names=names, vals=vals,
                                         page_size=page_size)
            yield from rows
            if start is None:
                return

    def older() -> collections.abc.Iterator[dict[str, Any]]:
        if not newest_first and after is not None and not legacy_after:
            return  # the cursor is newer than every row of the older layout
        yield from dal.query_owner(table, f"{owner}#EVT", newest_first=newest_first,
                                   start=dal.resume_after(after) if legacy_after and after else None,
                                   sk_from=clock.sortable(since) if since else None,
                                   sk_to=clock.sortable(before) if before else None,
                                   filter_expression=filter_expression, names=names, vals=vals, page_size=page_size)

    return itertools.chain(current(), older()) if newest_first else itertools.chain(older(), current())


def owner_endpoints(merchant_id: str, mode: str) -> list[dict[str, Any]]:
    """Every endpoint of a merchant and mode, deleted ones included (their deliveries still count)."""
    return list(dal.query_owner(dal.credentials_table(), f"WHE#{merchant_id}#{mode}", index="by_merchant"))


def summaries_of(events: list[dict[str, Any]], endpoint_ids: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The delivery rows of several events: BatchGetItem over (event, endpoint) keys, the merchant's endpoints
    (deleted ones too) unless ``endpoint_ids`` says which; one Query per event when that takes fewer calls
    (a merchant with many endpoints)."""
    out: dict[str, list[dict[str, Any]]] = {e["id"]: [] for e in events}
    wanted = [e for e in events if e.get("deliveries_total") != 0]
    if not wanted:
        return out
    if endpoint_ids is None:
        endpoint_ids = [w["id"] for w in owner_endpoints(wanted[0]["merchant_id"], wanted[0]["mode"])]
    table = dal.payments_table()
    if -(-len(wanted) * len(endpoint_ids) // 100) > len(wanted):  # BatchGetItem takes 100 keys a call
        for event in wanted:
            out[event["id"]] = [r for r in dal.query_partition(table, delivery_partition(event["id"]), "DLV#")
                                if is_summary(r)]
        return out
    found = dal.get_many(table, [(delivery_partition(e["id"]), f"DLV#{w}") for e in wanted for w in endpoint_ids])
    for row in found.values():
        out.setdefault(row["event_id"], []).append(row)
    return out


def _chunks(items: Any, size: int) -> Any:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# Server-side narrowing for the ``delivery_status`` filter; the status itself is decided from the delivery rows.
_DELIVERY_FILTERS = {
    "delivered": "attribute_not_exists(dlv_failed) AND (attribute_not_exists(deliveries_total) OR deliveries_total <> :zero)",
    "pending": "attribute_not_exists(dlv_failed) AND (attribute_not_exists(deliveries_total) OR deliveries_total <> :zero)",
    "failed": "attribute_exists(dlv_failed) OR deliveries_failed > :zero",
    "no_endpoints": "deliveries_total = :zero",
}


def list_events(p: Principal, *, limit: int, starting_after: str | None, type_: str | None, delivery_status: str | None,
                object_id: str | None, created_gte: dt.datetime | None, created_lte: dt.datetime | None) -> dict[str, Any]:
    anchor = None
    if starting_after:
        try:
            anchor = load_event(p, starting_after)
        except (InvalidRequest, NotFound):
            raise InvalidRequest("starting_after must be the id of one of your events", param="starting_after") from None
    clauses, names, vals = [], {}, {}
    if type_:
        clauses.append("#type = :type")
        names["#type"] = "type"
        vals |= dal.values(type=type_)
    if object_id:
        clauses.append("object_id = :object_id")
        vals |= dal.values(object_id=object_id)
    if delivery_status:
        clauses.append(f"({_DELIVERY_FILTERS[delivery_status]})")
        vals |= dal.values(zero=0)
    before = None
    if created_lte:
        try:
            before = created_lte + dt.timedelta(seconds=1)  # the whole second: ``created`` is shown in seconds
        except OverflowError:
            before = None  # the last second there is: no upper bound
    items = owner_events(
        p.owner, after=anchor, since=created_gte, before=before,
        filter_expression=" AND ".join(clauses) or None, names=names or None, vals=vals or None,
    )
    page: list[dict[str, Any]] = []
    has_more = False
    endpoint_ids = [w["id"] for w in owner_endpoints(p.merchant_id, p.mode)]
    for chunk in _chunks(items, limit + 1):
        found = summaries_of(chunk, endpoint_ids)
        for item in chunk:
            view = event_view(item, found.get(item["id"], []))
            if delivery_status and view["delivery"]["status"] != delivery_status:
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append(view)
        if has_more:
            break
    return {"object": "list", "events": page, "has_more": has_more, "limit": limit,
            "next_starting_after": page[-1]["id"] if has_more else None}


def deliveries(p: Principal, event_id: str) -> dict[str, Any]:
    load_event(p, event_id)
    rows = dal.query_partition(dal.payments_table(), f"EVT#{event_id}", "DLV#")
    summaries = {r["endpoint_id"]: r for r in rows if is_summary(r)}
    out = []
    for endpoint_id, summary in summaries.items():
        tries = attempt_history(summary, rows)
        out.append({
            "endpoint_id": endpoint_id, "url": summary["url"], "status": summary["status"],
            "attempts": summary["attempts"], "round": summary["round"], "next_retry_at": summary.get("next_retry_at"),
            "delivered_at": summary.get("delivered_at"), "last_status_code": summary.get("last_status_code"),
            "history": tries,
        })
    return {"event_id": event_id, "deliveries": out}


def redeliver(p: Principal, event_id: str, endpoint_id: str | None) -> dict[str, Any]:
    """Start a delivery over (a new round, attempts from 1), for one endpoint or all."""
    item = load_event(p, event_id)
    table = dal.payments_table()
    rows = [r for r in dal.query_partition(table, delivery_partition(event_id), "DLV#") if is_summary(r)]
    queued = []
    if endpoint_id:
        rows = [r for r in rows if r["endpoint_id"] == endpoint_id]
        if not rows:
            endpoint = load_endpoint(p, endpoint_id)  # a known endpoint that never got this event: add it
            now = clock.now()
            row = {"pk": delivery_partition(event_id), "sk": f"DLV#{endpoint_id}", "event_id": event_id, "event_type": item["type"],
                   "endpoint_id": endpoint_id, "merchant_id": p.merchant_id, "mode": p.mode, "url": endpoint["url"],
                   "status": "pending", "attempts": 0, "round": 0, "created_at": clock.iso(now)}
            actions = [dal.put_action(table, row, condition="attribute_not_exists(sk)")]
            if item.get("deliveries_total") == 0:  # no longer an event without endpoints
                actions.append(dal.update_action(table, item["pk"], item["sk"], "REMOVE deliveries_total", condition=None))
            try:
                dal.transact(actions)
                queued.append((event_id, endpoint_id, 0))
            except dal.ConditionFailed:
                pass  # someone added it at the same moment
    for row in rows:
        restart = f"SET #status = :pending, attempts = :zero, #round = :next REMOVE next_retry_at, {DELIVERED_ATTEMPT}"
        actions = [dal.update_action(table, row["pk"], row["sk"], restart,
                                     condition="#round = :round", names={"#status": "status", "#round": "round"},
                                     vals=dal.values(pending="pending", zero=0, next=row["round"] + 1, round=row["round"]))]
        kept = row.get(DELIVERED_ATTEMPT)
        if kept:  # the round's delivering attempt moves out of the row to an attempt row of its own
            actions.append(dal.put_action(table, {
                "pk": row["pk"], "sk": attempt_sk(row["endpoint_id"], int(kept["round"]), int(kept["number"])),
                "event_id": event_id, "endpoint_id": row["endpoint_id"], **kept}, condition="attribute_not_exists(sk)"))
        if row["status"] == "failed":
            expression = "DELETE dlv_failed :ep"
            if int(item.get("deliveries_failed") or 0) > 0:  # an event recorded before the failed set: its count
                expression += " ADD deliveries_failed :minus"
            actions.append(dal.update_action(table, item["pk"], item["sk"], expression, condition=None,
                                             vals=dal.values(ep={row["endpoint_id"]}, **(
                                                 {"minus": -1} if "ADD" in expression else {}))))
        try:
            dal.transact(actions)
        except dal.ConditionFailed:
            continue  # someone redelivered it at the same moment
        queued.append((event_id, row["endpoint_id"], row["round"] + 1))
    _enqueue(queued, owner=(p.merchant_id, p.mode))
    return {"event_id": event_id, "redelivering_to": [e for _, e, _ in queued]}


def recover(p: Principal, endpoint_id: str, since: dt.datetime) -> dict[str, Any]:
    """Send again every delivery to this endpoint that failed, of the events since ``since``.

    The events that had a delivery fail say so (``dlv_failed``, a set of endpoint ids), so one Query with a
    filter finds them; their delivery rows to this endpoint are read by key.
    """
    load_endpoint(p, endpoint_id)
    candidates = list(owner_events(
        p.owner, since=since, newest_first=False,
        filter_expression="contains(dlv_failed, :ep) OR deliveries_failed > :zero", vals=dal.values(ep=endpoint_id, zero=0)))
    events: list[str] = []
    for chunk in _chunks(candidates, 100):
        keys = {e["id"]: (delivery_partition(e["id"]), f"DLV#{endpoint_id}") for e in chunk}
        found = dal.get_many(dal.payments_table(), list(keys.values()))
        events += [e["id"] for e in chunk if (found.get(keys[e["id"]]) or {}).get("status") == "failed"]
    for event_id in events:
        redeliver(p, event_id, endpoint_id)
    return {"endpoint_id": endpoint_id, "since": clock.iso(since), "redelivered_events": events}
