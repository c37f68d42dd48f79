"""The parameter markers route functions annotate their arguments with (``Annotated[Model, Body()]``),
Powertools' own, named here so a handler's imports say ``tahsil.api`` for everything HTTP."""

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

__all__ = ["Body", "Query"]
