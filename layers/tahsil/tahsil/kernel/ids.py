"""Object ids: a type prefix and 20 random base62 characters (~119 bits)."""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_token(20)}"


ID_PATTERN = re.compile(r"^[a-z]{2,5}_[A-Za-z0-9]{8,64}$")


def looks_like(prefix: str, value: str) -> bool:
    return value.startswith(prefix + "_") and bool(ID_PATTERN.match(value))
