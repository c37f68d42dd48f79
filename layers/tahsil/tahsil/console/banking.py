"""Payout bank details, checked the way banks check them, before anything is stored.

- IBAN currencies (EUR, TRY, MAD, IQD, and the others below): ISO 13616 — the country's
  length and BBAN shape, and the mod-97 check digits (the IBAN, its first four characters moved
  to the end and letters turned into numbers A=10…Z=35, leaves 1 when divided by 97). The IBAN's
  country must be one that settles the currency (a EUR payout to a Turkish IBAN is refused).
- USD: an ABA routing number (9 digits, a Federal Reserve prefix, and the 3-7-1 weighted
  checksum: 3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) is a multiple of 10) and an account number
  of 4 to 17 digits.

Every refusal is an ``InvalidRequest`` naming the field (``payout_destination.iban``...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tahsil.kernel.errors import InvalidRequest

# Countries: IBAN length, and the BBAN's shape where we know it (n digits, a letters, c alphanumerics).
IBAN_FORMATS: dict[str, tuple[int, str | None]] = {
    # euro area
    "AT": (20, r"\d{16}"), "BE": (16, r"\d{12}"), "CY": (28, r"\d{8}[A-Z0-9]{16}"), "DE": (22, r"\d{18}"),
    "EE": (20, r"\d{16}"), "ES": (24, r"\d{20}"), "FI": (18, r"\d{14}"), "FR": (27, r"\d{10}[A-Z0-9]{11}\d{2}"),
    "GR": (27, r"\d{7}[A-Z0-9]{16}"), "HR": (21, r"\d{17}"), "IE": (22, r"[A-Z]{4}\d{14}"),
    "IT": (27, r"[A-Z]\d{10}[A-Z0-9]{12}"), "LT": (20, r"\d{16}"), "LU": (20, r"\d{3}[A-Z0-9]{13}"),
    "LV": (21, r"[A-Z]{4}[A-Z0-9]{13}"), "MT": (31, r"[A-Z]{4}\d{5}[A-Z0-9]{18}"), "NL": (18, r"[A-Z]{4}\d{10}"),
    "PT": (25, r"\d{21}"), "SI": (19, r"\d{15}"), "SK": (24, r"\d{20}"), "MC": (27, r"\d{10}[A-Z0-9]{11}\d{2}"),
    "SM": (27, r"[A-Z]\d{10}[A-Z0-9]{12}"), "AD": (24, r"\d{8}[A-Z0-9]{12}"), "VA": (22, r"\d{18}"),
    # the region Tahsil's seeds come from
    "TR": (26, r"\d{5}0[A-Z0-9]{16}"),   # 5-digit bank code, a reserved 0, 16-character account
    "MA": (28, r"\d{24}"),               # Morocco: bank 3, city 3, account 16, RIB key 2
    "IQ": (23, r"[A-Z]{4}\d{15}"),       # Iraq: 4-letter bank code (NBIQ, RAFB...), branch 3, account 12
    "AE": (23, r"\d{19}"), "SA": (24, r"\d{2}[A-Z0-9]{18}"), "QA": (29, r"[A-Z]{4}[A-Z0-9]{21}"),
    "BH": (22, r"[A-Z]{4}[A-Z0-9]{14}"), "KW": (30, r"[A-Z]{4}[A-Z0-9]{22}"), "JO": (30, r"[A-Z]{4}\d{4}[A-Z0-9]{18}"),
    "EG": (29, r"\d{25}"), "TN": (24, r"\d{20}"), "LY": (25, r"\d{21}"),
    # elsewhere in Europe
    "GB": (22, r"[A-Z]{4}\d{14}"), "CH": (21, r"\d{5}[A-Z0-9]{12}"), "PL": (28, r"\d{24}"), "SE": (24, r"\d{20}"),
    "NO": (15, r"\d{11}"), "DK": (18, r"\d{14}"),
}

EURO_AREA = frozenset({"AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT",
                       "NL", "PT", "SI", "SK", "MC", "SM", "AD", "VA"})
# Payout currency -> the IBAN countries that settle it.
IBAN_CURRENCIES: dict[str, frozenset[str]] = {
    "EUR": EURO_AREA, "TRY": frozenset({"TR"}), "MAD": frozenset({"MA"}), "IQD": frozenset({"IQ"}),
    "AED": frozenset({"AE"}), "SAR": frozenset({"SA"}), "QAR": frozenset({"QA"}), "BHD": frozenset({"BH"}),
    "KWD": frozenset({"KW"}), "JOD": frozenset({"JO"}), "EGP": frozenset({"EG"}), "TND": frozenset({"TN"}),
    "LYD": frozenset({"LY"}), "GBP": frozenset({"GB"}), "CHF": frozenset({"CH"}), "PLN": frozenset({"PL"}),
    "SEK": frozenset({"SE"}), "NOK": frozenset({"NO"}), "DKK": frozenset({"DK"}),
}
ABA_CURRENCIES = frozenset({"USD"})
PAYOUT_CURRENCIES = tuple(sorted(set(IBAN_CURRENCIES) | ABA_CURRENCIES))
# First two digits of a routing number: Federal Reserve districts 01-12, thrifts 21-32, electronic 61-72, travelers 80.
_ABA_PREFIXES = {f"{n:02d}" for n in (*range(1, 13), *range(21, 33), *range(61, 73), 80)}


def normalize_iban(value: str) -> str:
    return re.sub(r"[\s-]", "", value or "").upper()


def iban_checksum_ok(iban: str) -> bool:
    """ISO 7064 mod 97-10 on the rearranged IBAN."""
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def aba_checksum_ok(routing: str) -> bool:
    d = [int(c) for c in routing]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


@dataclass(frozen=True)
class BankAccount:
    """Checked bank details: what may be shown (country, last 4) and what is sealed (``account``)."""

    currency: str
    scheme: str  # "iban" | "aba"
    country: str
    account: str  # the IBAN, or "<routing>:<account number>"
    last4: str
    bank_code: str | None


def check_iban(value: str, currency: str, *, param: str) -> BankAccount:
    iban = normalize_iban(value)
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}", iban):
        raise InvalidRequest(f"{param}: an IBAN is 2 letters (country), 2 check digits and up to 30 letters or digits",
                             param=param)
    country = iban[:2]
    allowed = IBAN_CURRENCIES[currency]
    if country not in allowed:
        where = ", ".join(sorted(allowed)) if len(allowed) <= 4 else "a euro-area country"
        raise InvalidRequest(f"{param}: {currency} payouts go to an IBAN from {where}, not {country}", param=param)
    length, bban = IBAN_FORMATS[country]
    if len(iban) != length:
        raise InvalidRequest(f"{param}: a {country} IBAN has {length} characters, this one has {len(iban)}", param=param)
    if bban and not re.fullmatch(bban, iban[4:]):
        raise InvalidRequest(f"{param}: not a valid {country} account number (BBAN format)", param=param)
    if not iban_checksum_ok(iban):
        raise InvalidRequest(f"{param}: the IBAN's check digits do not match (mod 97); check for a typo", param=param)
    bank_code = iban[4:8] if country == "IQ" else iban[4:9] if country == "TR" else None
    return BankAccount(currency=currency, scheme="iban", country=country, account=iban, last4=iban[-4:],
                       bank_code=bank_code)


def check_aba(routing: str, account_number: str, *, prefix: str) -> BankAccount:
    routing = (routing or "").strip()
    number = re.sub(r"[\s-]", "", account_number or "")
    if not re.fullmatch(r"\d{9}", routing):
        raise InvalidRequest(f"{prefix}.routing_number: an ABA routing number has 9 digits", param=f"{prefix}.routing_number")
    if routing[:2] not in _ABA_PREFIXES:
        raise InvalidRequest(f"{prefix}.routing_number: {routing[:2]} is not a Federal Reserve routing prefix",
                             param=f"{prefix}.routing_number")
    if not aba_checksum_ok(routing):
        raise InvalidRequest(f"{prefix}.routing_number: the routing number's check digit does not match; check for a typo",
                             param=f"{prefix}.routing_number")
    if not re.fullmatch(r"\d{4,17}", number):
        raise InvalidRequest(f"{prefix}.account_number: a US account number has 4 to 17 digits",
                             param=f"{prefix}.account_number")
    return BankAccount(currency="USD", scheme="aba", country="US", account=f"{routing}:{number}", last4=number[-4:],
                       bank_code=routing)


def check(currency: str, *, iban: str | None, routing_number: str | None, account_number: str | None,
          prefix: str = "payout_destination") -> BankAccount:
    """The bank details for a payout in ``currency``, or a 400 naming the field that is wrong."""
    if currency in IBAN_CURRENCIES:
        if routing_number or account_number:
            field = "routing_number" if routing_number else "account_number"
            raise InvalidRequest(f"{prefix}.{field}: {currency} payouts use an IBAN, not US bank details",
                                 param=f"{prefix}.{field}")
        if not iban:
            raise InvalidRequest(f"{prefix}.iban: is required for {currency} payouts", param=f"{prefix}.iban")
        return check_iban(iban, currency, param=f"{prefix}.iban")
    if currency in ABA_CURRENCIES:
        if iban:
            raise InvalidRequest(f"{prefix}.iban: USD payouts use a routing and account number, not an IBAN",
                                 param=f"{prefix}.iban")
        if not routing_number:
            raise InvalidRequest(f"{prefix}.routing_number: is required for USD payouts", param=f"{prefix}.routing_number")
        if not account_number:
            raise InvalidRequest(f"{prefix}.account_number: is required for USD payouts", param=f"{prefix}.account_number")
        return check_aba(routing_number, account_number, prefix=prefix)
    raise InvalidRequest(f"{prefix}.currency: payouts are supported in {', '.join(PAYOUT_CURRENCIES)}",
                         param=f"{prefix}.currency")
