"""Imported first by the modules every API function loads (``tahsil.api.http``, ``tahsil.api.params``):
Powertools' event handler and event class packages load only what a REST API uses
(``tahsil.api.defer_unused_powertools``; only in Lambda)."""

from tahsil.api import defer_unused_powertools

defer_unused_powertools()
