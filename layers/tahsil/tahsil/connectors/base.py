"""The connector interface: what Tahsil asks a processor, and the normalized answer it gets back.

Every operation carries Tahsil's own reference (``pay_...`` for an authorization or sale,
``txn_...`` for a capture, void or refund). A connector sends it as the processor's idempotency
key and merchant reference, so asking twice never acts twice, and ``lookup`` can ask for the
outcome of an operation whose answer was lost (timeout, crash) by that reference alone.

Answers are normalized to seed 002's response codes; the processor's own reason and reference
travel beside them (``Outcome.processor_reason``, ``Outcome.processor_reference``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

# Seed 002's response codes, and 59 for a fraud refusal. A processor's answer maps onto one of them.
SEED_CODES: dict[str, str] = {
    "00": "Approved",
    "05": "Do not honor",
    "51": "Insufficient funds",
    "54": "Expired card",
    "N7": "CVV mismatch",
    "96": "Processing error",
    "59": "Suspected fraud",
}

Kind = Literal["authorize", "sale", "capture", "void", "refund"]
MODIFICATIONS: frozenset[str] = frozenset({"capture", "void", "refund"})


@dataclass(frozen=True)
class CardData:
    """A card for one processor call; never logged (repr hides it), never stored in clear."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvv: str | None = field(default=None, repr=False)  # None when replaying: the CVV is never stored
    holder: str | None = field(default=None, repr=False)


class Operation(NamedTuple):
    kind: Kind
    reference: str  # Tahsil's id for this operation: the processor's idempotency key and merchant reference
    amount: int
    currency: str
    payment_id: str  # Tahsil's payment
    payment_reference: str | None = None  # the processor's reference of the payment (modifications)
    card: CardData | None = None  # authorize and sale


@dataclass(frozen=True)
class Outcome:
    """approved: done; declined: refused (``code`` says why); pending: acknowledged, settles by notification;
    requires_action: the shopper must authenticate first (3-D Secure 2; ``action`` says where to send them)."""

    status: Literal["approved", "declined", "pending", "requires_action"]
    code: str  # a key of SEED_CODES
    message: str
    processor_reference: str | None = None
    processor_reason: str | None = None
    auth_code: str | None = None
    risk_flag: bool = False  # the simulator's risky test card (adds to the fraud score)
    # 3-D Secure 2: {version, flow, result, liability_shift} when the payment was authenticated
    three_d_secure: dict[str, object] | None = None
    action: dict[str, object] | None = None  # requires_action: what the processor asks (e.g. Adyen's action)

    def __post_init__(self) -> None:
        if self.code not in SEED_CODES:
            raise ValueError(f"{self.code!r} is not a seed response code")

    def record(self) -> dict[str, str | None]:
        """What Tahsil stores about the processor's answer (no card data, no credentials)."""
        return {"processor_reference": self.processor_reference, "processor_reason": self.processor_reason}


class OutcomeUnknown(Exception):
    """The processor may or may not have acted (timeout, 5xx, connection lost): ask again by reference."""


class ConnectorError(Exception):
    """The connector cannot be used as configured (missing credentials, bad settings): nothing was sent."""


class Connector:
    """A processor. ``remote`` connectors are called between two DynamoDB phases (see tahsil.payments.processing);
    the simulator answers in process, inside the payment's single transaction."""

    name = "connector"
    remote = True

    def execute(self, op: Operation, *, timeout: float) -> Outcome:  # pragma: no cover - interface
        raise NotImplementedError

    def lookup(self, op: Operation, *, timeout: float) -> Outcome:
        """The outcome of ``op`` by its reference; raises OutcomeUnknown if the processor cannot say yet."""
        raise NotImplementedError  # pragma: no cover - interface

    # The named operations the issue lists, over ``execute``.
    def authorize(self, op: Operation, *, timeout: float) -> Outcome:
        return self.execute(_kind(op, "authorize"), timeout=timeout)

    def sale(self, op: Operation, *, timeout: float) -> Outcome:
        return self.execute(_kind(op, "sale"), timeout=timeout)

    def capture(self, op: Operation, *, timeout: float) -> Outcome:
        return self.execute(_kind(op, "capture"), timeout=timeout)

    def void(self, op: Operation, *, timeout: float) -> Outcome:
        return self.execute(_kind(op, "void"), timeout=timeout)

    def refund(self, op: Operation, *, timeout: float) -> Outcome:
        return self.execute(_kind(op, "refund"), timeout=timeout)


def _kind(op: Operation, kind: str) -> Operation:
    if op.kind != kind:
        raise ValueError(f"operation is a {op.kind}, not a {kind}")
    return op
