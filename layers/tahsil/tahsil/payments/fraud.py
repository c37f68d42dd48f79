"""Deterministic fraud scoring: the same inputs always give the same score.

Rules (points add up, capped at 100):
- amount: >= 1,000 major units +10, >= 5,000 +20 (replaces the +10), >= 10,000 +35;
- velocity: authorizations on the same card fingerprint within the current hour,
  counting this one: 4-5 +20, 6-9 +40, 10 or more +75;
- a card on the risky list (test card 4000 0000 0000 0259) +85.
In test mode the documented test cards (``tahsil.payments.cards.test_card_rule``) answer the
same way every time: seed 002's cards get no amount or velocity points, and Tahsil's velocity
test cards get the velocity points of the attempt count they stand for (and no amount points).
Every other card, and every card in live mode, goes through all the rules.
Decision: score < 30 approve, 30-70 review (authorized, flagged), > 70 decline.
"""

from __future__ import annotations

from typing import NamedTuple

from tahsil.kernel.money import MINOR_UNITS
from tahsil.payments.cards import TestCardRule

REVIEW_FROM = 30
DECLINE_ABOVE = 70
# Velocity counts below this add nothing: the hot path asks DynamoDB only to confirm it.
VELOCITY_FREE_BELOW = 4


class FraudResult(NamedTuple):
    score: int
    decision: str  # approve | review | decline
    reasons: tuple[str, ...]


def _amount_points(amount: int, currency: str) -> tuple[int, str | None]:
    major = amount / 10 ** MINOR_UNITS[currency]
    if major >= 10_000:
        return 35, "amount>=10000"
    if major >= 5_000:
        return 20, "amount>=5000"
    if major >= 1_000:
        return 10, "amount>=1000"
    return 0, None


def _velocity_points(count: int) -> tuple[int, str | None]:
    if count >= 10:
        return 75, "velocity>=10/h"
    if count >= 6:
        return 40, "velocity>=6/h"
    if count >= VELOCITY_FREE_BELOW:
        return 20, "velocity>=4/h"
    return 0, None


def score(*, amount: int, currency: str, velocity: int, risky_card: bool,
          test_card: TestCardRule | None = None) -> FraudResult:
    """``velocity`` counts this attempt; ``test_card`` is the card's test-mode rule, if it has one."""
    points = 0
    reasons: list[str] = []
    if test_card is None:
        rules = (_amount_points(amount, currency), _velocity_points(velocity))
    elif test_card.velocity is not None:
        rules = (_velocity_points(test_card.velocity),)
    else:
        rules = ()
    for p, why in rules:
        points += p
        if why:
            reasons.append(why)
    if risky_card:
        points += 85
        reasons.append("risky_card")
    total = min(points, 100)
    if total > DECLINE_ABOVE:
        decision = "decline"
    elif total >= REVIEW_FROM:
        decision = "review"
    else:
        decision = "approve"
    return FraudResult(total, decision, tuple(reasons))
