"""Request model shared by the test-mode time travel endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tahsil.models import Strict


class Advance(Strict):
    seconds: Annotated[int, Field(strict=True, ge=1, le=366 * 86400, description="how far to move the object's clock")]
