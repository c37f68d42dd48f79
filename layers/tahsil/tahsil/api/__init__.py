"""The HTTP contract: the Powertools resolver and entry point, the response envelope, authentication
(keys, signatures, dashboard tokens), rate limits, Idempotency-Key handling, request logs, API
version rendering, tracing, and the wrappers of the queue and state-machine workers.

The top layer of the package: it may import every other ``tahsil`` package; none may import it.
Handlers (``functions/*/app.py``) import ``tahsil.api`` plus the domain module they call.
"""
