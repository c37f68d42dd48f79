"""Money: integer amounts in a currency's minor unit, ISO 4217 exponents.

Minor units from ISO 4217 (https://www.iso.org/iso-4217-currency-codes.html): most
currencies have 2 decimals; JPY and KRW have 0; IQD, KWD, BHD, JOD, OMR, TND, LYD have 3.
"""

from __future__ import annotations

MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "MAD": 2, "TRY": 2,
    "AED": 2, "SAR": 2, "EGP": 2, "QAR": 2, "INR": 2, "PLN": 2, "SEK": 2, "NOK": 2, "DKK": 2,
    "JPY": 0, "KRW": 0,
    "IQD": 3, "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3, "LYD": 3,
}

SUPPORTED_CURRENCIES = tuple(sorted(MINOR_UNITS))

# Upper bound for one payment: 10,000,000 major units in the currency (USD 10M, IQD 10M).
# Anything bigger is almost certainly a unit mistake (major units sent as minor or the reverse).
MAX_MAJOR_UNITS = 10_000_000


def max_amount(currency: str) -> int:
    return MAX_MAJOR_UNITS * 10 ** MINOR_UNITS[currency]


def format_amount(amount: int, currency: str) -> str:
    """``format_amount(9999, "USD") == "99.99 USD"``; IQD has three decimals."""
    exponent = MINOR_UNITS[currency]
    if exponent == 0:
        return f"{amount} {currency}"
    major, minor = divmod(amount, 10**exponent)
    return f"{major}.{minor:0{exponent}d} {currency}"
