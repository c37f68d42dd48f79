"""The parameter markers route functions annotate their arguments with (``Annotated[Model, Body()]``).

Handlers import them from here rather than from Powertools, so that ``tahsil.api`` (and its deferral of
asyncio, see its ``__init__``) and ``tahsil.api.lean`` are imported before Powertools' event handler package is.
"""

import tahsil.api.lean  # noqa: F401 - first, before Powertools: see tahsil.api.lean

# isort: split

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

__all__ = ["Body", "Query"]
