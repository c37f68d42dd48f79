"""Go-live and live-mode calls the console tests share."""

from __future__ import annotations

from typing import Any

from tests.support.calls import CARD, fresh_card
from tests.support.console import call

SALE = {"amount": 2500, "currency": "USD", "description": "Order #7"}


def sale(key: str, idem: str | None = None, **over: Any):
    return call("payments-sale", key, body={**SALE, "card": {**CARD, "number": fresh_card()}, **over}, idem=idem)
