"""Card checks (Luhn, brand, expiry) and the simulated issuer with seed 002's test cards."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import NamedTuple


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# (brand, prefix ranges, allowed lengths); ranges follow the public IIN tables.
_BRANDS: list[tuple[str, list[tuple[int, int]], tuple[int, ...]]] = [
    ("amex", [(34, 34), (37, 37)], (15,)),
    ("visa", [(4, 4)], (13, 16, 19)),
    ("mastercard", [(51, 55), (2221, 2720)], (16,)),
    ("discover", [(6011, 6011), (644, 649), (65, 65)], (16, 19)),
    ("jcb", [(3528, 3589)], (16, 17, 18, 19)),
    ("diners", [(300, 305), (36, 36), (38, 39)], (14, 16, 19)),
    ("unionpay", [(62, 62)], (16, 17, 18, 19)),
]


def detect_brand(number: str) -> str | None:
    for brand, ranges, lengths in _BRANDS:
        if len(number) not in lengths:
            continue
        for lo, hi in ranges:
            width = len(str(lo))
            if lo <= int(number[:width]) <= hi:
                return brand
    return None


def expiry_in_future(exp_month: int, exp_year: int, today: dt.date) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (exp_year, exp_month) >= (today.year, today.month)


class IssuerAnswer(NamedTuple):
    approved: bool
    response_code: str
    response_message: str
    auth_code: str | None
    fraud_flag: bool = False  # the card is on the risky list (adds to the fraud score)
    authentication: str | None = None  # 3-D Secure test cards: "challenge" or "frictionless"


# Seed 002, "Test Cards": number -> (response code, message).
TEST_DECLINES: dict[str, tuple[str, str]] = {
    "4000000000000002": ("05", "Do not honor"),
    "4000000000009995": ("51", "Insufficient funds"),
    "4000000000000069": ("54", "Expired card"),
    "4000000000000127": ("N7", "CVV mismatch"),
    "4000000000000119": ("96", "Processing error"),
}
HIGH_RISK_CARDS = frozenset({"4000000000000259"})
TEST_APPROVALS = frozenset({"4242424242424242", "5555555555554444"})
# Every card in seed 002's table: in test mode each answers exactly as the table says, however
# often it is used (no velocity or amount points; tahsil.payments.fraud).
SEED_TEST_CARDS = frozenset(TEST_APPROVALS | TEST_DECLINES.keys() | HIGH_RISK_CARDS)
# Tahsil's own test cards that trip the velocity rule on purpose, in test mode: the attempt
# counts as this many authorizations of the card within the hour (10: +75, declined; 6: +40, review).
VELOCITY_TEST_CARDS: dict[str, int] = {
    "4000000000006975": 10,
    "4000000000004970": 6,
}


# Tahsil's 3-D Secure 2 test cards (test mode): number -> (flow, the issuer's answer after a completed
# authentication). Seed 002's cards never ask for authentication.
THREEDS_TEST_CARDS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "4000002760003184": ("challenge", None),  # approved once the shopper completes the challenge
    "4000000000003220": ("frictionless", None),  # authenticated without a challenge, authorized at once
    "4000008400001629": ("challenge", ("05", "Do not honor")),  # declined by the issuer after authenticating
}


class TestCardRule(NamedTuple):
    """How the fraud rules treat a test card in test mode.

    ``velocity`` is None for seed 002's cards (the velocity and amount rules do not apply), or
    the attempt count a velocity test card stands for. The risky-card rule always applies.
    """

    velocity: int | None = None


def test_card_rule(number: str, mode: str) -> TestCardRule | None:
    """The test-mode rule for a documented test card; None for every other card and in live mode."""
    if mode != "test":
        return None
    if number in VELOCITY_TEST_CARDS:
        return TestCardRule(velocity=VELOCITY_TEST_CARDS[number])
    if number in SEED_TEST_CARDS or number in THREEDS_TEST_CARDS:
        return TestCardRule()
    return None


def issuer_decision(number: str, payment_id: str, *, authenticated: bool = False) -> IssuerAnswer:
    """The simulated issuer: deterministic, so a test card always gives the same answer. A 3-D Secure test card
    asks for authentication first (``authentication``); ``authenticated`` is its answer after a completed one."""
    if number in THREEDS_TEST_CARDS:
        flow, after = THREEDS_TEST_CARDS[number]
        if flow == "challenge" and not authenticated:
            return IssuerAnswer(False, "00", "Authentication required", None, authentication="challenge")
        if after is not None:
            return IssuerAnswer(False, after[0], after[1], None, authentication=flow)
        auth_code = str(int(hashlib.sha256(payment_id.encode()).hexdigest()[:8], 16) % 1_000_000).zfill(6)
        return IssuerAnswer(True, "00", "Approved", auth_code, authentication=flow)
    if number in TEST_DECLINES:
        code, message = TEST_DECLINES[number]
        return IssuerAnswer(False, code, message, None)
    auth_code = str(int(hashlib.sha256(payment_id.encode()).hexdigest()[:8], 16) % 1_000_000).zfill(6)
    return IssuerAnswer(True, "00", "Approved", auth_code, fraud_flag=number in HIGH_RISK_CARDS)
