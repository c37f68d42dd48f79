"""Time in one place: UTC everywhere, ISO 8601 with a trailing Z on the wire."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    """Seconds precision, as merchants see it: ``2026-01-24T10:00:00Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sortable(moment: dt.datetime) -> str:
    """Microsecond precision, for sort keys: ``2026-01-24T10:00:00.123456Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
