"""The delivery message: one attempt to make, in one encoding from the outbox to the sender.

The fan-out (``tahsil.webhooks.fanout``) and a redeliver (``tahsil.webhooks.events``) queue first attempts
on the delivery queue; the deliver function reads them back; a failed first attempt hands the same
message, at attempt 2, to the retry state machine, whose input it is (with ``wait_seconds``, and the
task's ``outcome`` added on the way back). Everywhere it is ``Message.encode()``: a JSON object with the
keys below; ``Message.decode`` reads it and ignores keys it does not know.

  event_id, endpoint_id   the delivery
  round                   which round of it (0, then one more per redeliver)
  attempt                 the attempt's number in its round (1: the first; absent means 1)
  schedule                seconds to wait before attempts 2, 3, ... (absent: the stack's schedule)
  of                      how many endpoints the event was fanned out to (first attempts from the fan-out)
  merchant_id, mode       where the event row is (absent in a message queued before events moved into
                          their merchant's partition: the event is under its old key)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any

from tahsil.store import aws

__all__ = ["Message", "enqueue"]


@dataclass(frozen=True)
class Message:
    """One attempt to make."""

    event_id: str
    endpoint_id: str
    round: int = 0
    attempt: int = 1
    schedule: tuple[int, ...] | None = None
    of: int | None = None
    merchant_id: str | None = None
    mode: str | None = None

    def encode(self) -> dict[str, Any]:
        """The message as a JSON object (the queue's body, the state machine's input)."""
        out: dict[str, Any] = {"event_id": self.event_id, "endpoint_id": self.endpoint_id, "round": self.round,
                               "attempt": self.attempt}
        if self.schedule is not None:
            out["schedule"] = list(self.schedule)
        if self.of is not None:
            out["of"] = self.of
        if self.merchant_id and self.mode:
            out["merchant_id"], out["mode"] = self.merchant_id, self.mode
        return out

    def to_json(self) -> str:
        return json.dumps(self.encode(), separators=(",", ":"))

    @classmethod
    def decode(cls, data: dict[str, Any]) -> Message:
        """Read an encoded message; KeyError, TypeError or ValueError when it is not one."""
        if not isinstance(data, dict):
            raise TypeError("a delivery message is a JSON object")
        schedule = data.get("schedule")
        return cls(
            event_id=str(data["event_id"]), endpoint_id=str(data["endpoint_id"]), round=int(data["round"]),
            attempt=int(data.get("attempt") or 1),
            schedule=tuple(int(w) for w in schedule) if schedule else None,
            of=int(data["of"]) if data.get("of") else None,
            merchant_id=str(data["merchant_id"]) if data.get("merchant_id") else None,
            mode=str(data["mode"]) if data.get("mode") else None,
        )

    @classmethod
    def from_json(cls, text: str) -> Message:
        return cls.decode(json.loads(text))

    def next_attempt(self, schedule: tuple[int, ...]) -> Message:
        """The same delivery's next attempt, with the schedule it follows."""
        return replace(self, attempt=self.attempt + 1, schedule=self.schedule or schedule, of=None)


def queue_url() -> str:
    url = os.environ.get("DELIVERY_QUEUE_URL")
    if not url:
        raise RuntimeError("missing environment variable DELIVERY_QUEUE_URL")
    return url


def enqueue(messages: list[Message]) -> None:
    """Queue first attempts on the delivery queue (DELIVERY_QUEUE_URL), ten to a SendMessageBatch."""
    sqs = aws.client("sqs")
    for start in range(0, len(messages), 10):
        chunk = messages[start:start + 10]
        answer = sqs.send_message_batch(QueueUrl=queue_url(), Entries=[
            {"Id": str(i), "MessageBody": m.to_json()} for i, m in enumerate(chunk)])
        if answer.get("Failed"):
            raise RuntimeError(f"could not queue {len(answer['Failed'])} deliveries")
