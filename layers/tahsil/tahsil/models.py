"""Request models. Constraints live here, so a bad field becomes a 400 that names it."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from tahsil import cards
from tahsil.money import MINOR_UNITS, SUPPORTED_CURRENCIES


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    FAILED = "failed"
    EXPIRED = "expired"


# The lifecycle, written down once: action -> statuses it may start from.
TRANSITIONS: dict[str, frozenset[PaymentStatus]] = {
    "capture": frozenset({PaymentStatus.AUTHORIZED}),
    "void": frozenset({PaymentStatus.AUTHORIZED}),
    "refund": frozenset({PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED}),
    "expire": frozenset({PaymentStatus.AUTHORIZED}),
}


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped: a typo must not go unnoticed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _supported(value: str) -> str:
    if value not in MINOR_UNITS:
        raise ValueError(f"unsupported currency {value!r}; supported: {', '.join(SUPPORTED_CURRENCIES)}")
    return value


Currency = Annotated[
    str,
    BeforeValidator(_upper),
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_supported),
    Field(description="ISO 4217 code; amounts use its minor unit (USD cents, IQD fils)", examples=["USD"]),
]
Amount = Annotated[int, Field(strict=True, ge=1, description="Amount in the currency's minor unit")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Metadata = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=40)], Annotated[str, StringConstraints(max_length=500)]],
    Field(max_length=50, description="Up to 50 string pairs for your reference"),
]


def _digits(value: object) -> object:
    if isinstance(value, str):
        return re.sub(r"[ -]", "", value)
    return value


class Card(Strict):
    number: Annotated[SecretStr, BeforeValidator(_digits), Field(description="12 to 19 digits; spaces allowed")]
    exp_month: Annotated[int, Field(strict=True, ge=1, le=12)]
    exp_year: Annotated[int, Field(strict=True, ge=2000, le=2100)]
    cvv: Annotated[SecretStr, Field(description="3 or 4 digits; never stored")]
    cardholder_name: Annotated[str, StringConstraints(max_length=100)] | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: SecretStr) -> SecretStr:
        pan = value.get_secret_value()
        if not re.fullmatch(r"\d{12,19}", pan):
            raise ValueError("card number must be 12 to 19 digits")
        if not cards.luhn_ok(pan):
            raise ValueError("card number is invalid (Luhn check failed)")
        if cards.detect_brand(pan) is None:
            raise ValueError("card brand is not supported")
        return value

    @field_validator("cvv")
    @classmethod
    def _cvv(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"\d{3,4}", value.get_secret_value()):
            raise ValueError("cvv must be 3 or 4 digits")
        return value

    @model_validator(mode="after")
    def _not_expired(self) -> Card:
        if not cards.expiry_in_future(self.exp_month, self.exp_year, dt.datetime.now(dt.UTC).date()):
            raise ValueError("card has expired (exp_month/exp_year are in the past)")
        return self

    @property
    def pan(self) -> str:
        return self.number.get_secret_value()


class Customer(Strict):
    email: Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None


class PaymentCreate(Strict):
    amount: Amount
    currency: Currency
    card: Card
    customer: Customer | None = None
    description: ShortText | None = None
    metadata: Metadata | None = None


class CaptureRequest(Strict):
    amount: Amount | None = Field(default=None, description="Defaults to the full authorized amount")


class VoidRequest(Strict):
    reason: ShortText


class RefundRequest(Strict):
    amount: Amount | None = Field(default=None, description="Defaults to everything not yet refunded")
    reason: ShortText
