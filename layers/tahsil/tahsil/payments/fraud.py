"""Deterministic fraud scoring: the same inputs always give the same score.

Rules (points add up, capped at 100):
- amount: >= 1,000 major units +10, >= 5,000 +20 (replaces the +10), >= 10,000 +35;
- velocity: authorizations on the same card fingerprint within the current hour,
  counting this one: 4-5 +20, 6-9 +40, 10 or more +75;
- a card on the risky list (test card 4000 0000 0000 0259) +85.
Decision: score < 30 approve, 30-70 review (authorized, flagged), > 70 decline.
"""

from __future__ import annotations

from dataclasses import dataclass

from tahsil.kernel.money import MINOR_UNITS

REVIEW_FROM = 30
DECLINE_ABOVE = 70
# Velocity counts below this add nothing: the hot path asks DynamoDB only to confirm it.
VELOCITY_FREE_BELOW = 4


@dataclass(frozen=True)
class FraudResult:
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


def score(*, amount: int, currency: str, velocity: int, risky_card: bool) -> FraudResult:
    points = 0
    reasons: list[str] = []
    for p, why in (_amount_points(amount, currency), _velocity_points(velocity)):
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
