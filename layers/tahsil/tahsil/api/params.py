"""The parameter markers route functions annotate their arguments with (``Annotated[Model, Body()]``).

Handlers import them from here rather than from Powertools, so that ``tahsil.api`` (and its deferral of
asyncio, see its ``__init__``) is imported before Powertools' event handler package is.
"""

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

__all__ = ["Body", "Query"]
