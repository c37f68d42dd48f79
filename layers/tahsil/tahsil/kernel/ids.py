"""Object ids: a type prefix and 20 random base62 characters (~119 bits)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_token(20)}"


# Digits, then upper case, then lower case: base62 digits in ASCII order, so such strings sort as their numbers.
_ORDERED = string.digits + string.ascii_uppercase + string.ascii_lowercase
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def new_sortable_id(prefix: str, moment: dt.datetime) -> str:
    """An id that sorts by time: 9 base62 characters of the microseconds since 1970 (until the year 2398),
    then 11 random ones (~65 bits). The same 20 characters after the prefix as ``new_id``."""
    number, chars = (moment - _EPOCH) // dt.timedelta(microseconds=1), []
    for _ in range(9):
        number, rest = divmod(number, 62)
        chars.append(_ORDERED[rest])
    return f"{prefix}_{''.join(reversed(chars))}{random_token(11)}"


ID_PATTERN = re.compile(r"^[a-z]{2,5}_[A-Za-z0-9]{8,64}$")


def looks_like(prefix: str, value: str) -> bool:
    return value.startswith(prefix + "_") and bool(ID_PATTERN.match(value))
