"""The simulator: seed 002's test cards, answered in process. Test mode uses it and nothing else.

The issuer's rules (which test card declines with which code, which one is risky) stay with the
payments' card rules (``tahsil.payments.cards.issuer_decision``), which hands them in as ``decide``:
the connector turns that answer into an ``Outcome``, so test mode goes through the same interface
as a live processor while the seed's table keeps one home.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tahsil.connectors.base import Connector, Operation, Outcome


class Simulator(Connector):
    name = "simulator"
    remote = False  # no network: the decision is made inside the payment's one DynamoDB transaction

    def __init__(self, decide: Callable[[str, str], Any]) -> None:
        # decide(card number, payment id) -> an answer with approved, response_code, response_message,
        # auth_code and fraud_flag (tahsil.payments.cards.IssuerAnswer).
        self._decide = decide

    def execute(self, op: Operation, *, timeout: float = 0) -> Outcome:
        if op.kind in ("authorize", "sale"):
            if op.card is None:
                raise ValueError("an authorization needs a card")
            answer = self._decide(op.card.number, op.payment_id)
            if answer.authentication == "challenge" and not answer.approved and answer.response_code == "00":
                # The issuer's answer after a completed challenge is decided now, while the request carries the
                # card (a processor keeps its own state the same way): the return never needs the card again.
                after = self._decide(op.card.number, op.payment_id, authenticated=True)
                issuer = {"approved": bool(after.approved), "response_code": after.response_code,
                          "response_message": after.response_message, "auth_code": after.auth_code}
                return Outcome("requires_action", "00", "Authentication required", processor_reference=op.reference,
                               action={"type": "challenge", "issuer": issuer}, three_d_secure=three_ds("challenge", None))
            return Outcome("approved" if answer.approved else "declined", answer.response_code, answer.response_message,
                           processor_reference=op.reference, processor_reason=None, auth_code=answer.auth_code,
                           risk_flag=bool(answer.fraud_flag),
                           three_d_secure=three_ds(answer.authentication, "authenticated")
                           if answer.authentication else None)
        return Outcome("approved", "00", "Approved", processor_reference=op.reference)

    def authenticated(self, reference: str, action: dict[str, Any], *, completed: bool) -> Outcome:
        """The issuer's answer once the shopper completed (or failed) the test challenge: the one ``execute``
        decided and kept in the payment's ``action`` (no card needed here)."""
        if not completed:
            return Outcome("declined", "05", "Authentication failed", processor_reference=reference,
                           processor_reason="authentication_failed", three_d_secure=three_ds("challenge", "failed"))
        issuer = action["issuer"]
        return Outcome("approved" if issuer["approved"] else "declined", issuer["response_code"],
                       issuer["response_message"], processor_reference=reference, auth_code=issuer["auth_code"],
                       three_d_secure=three_ds("challenge", "authenticated"))

    def lookup(self, op: Operation, *, timeout: float = 0) -> Outcome:
        return self.execute(op, timeout=timeout)  # deterministic: asking again gives the same answer


def three_ds(flow: str, result: str | None) -> dict[str, object]:
    """A payment's ``three_d_secure``: liability shifts to the issuer once the cardholder authenticated."""
    return {"version": "2.2.0", "flow": flow, "result": result, "liability_shift": result == "authenticated"}
