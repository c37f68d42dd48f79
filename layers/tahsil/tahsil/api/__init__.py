"""The HTTP contract: the Powertools resolver and entry point, the response envelope, authentication
(keys, signatures, dashboard tokens), rate limits, Idempotency-Key handling, request logs, API
version rendering, tracing, and the wrappers of the queue and state-machine workers.

The top layer of the package: it may import every other ``tahsil`` package; none may import it.
Handlers (``functions/*/app.py``) import ``tahsil.api`` plus the domain module they call.
"""

import importlib.util
import os
import sys


def _defer_asyncio() -> None:
    """Load asyncio on first use instead of at import, in a Lambda on Python 3.13 or newer.

    Powertools' event handler package imports its AppSync resolvers, and asyncio with them, though a REST
    handler never awaits: ~15 ms of CPU in every API function's cold start (docs/benchmarks.md, "Cold start
    as built"). importlib's LazyLoader (the standard library's own recipe for lazy imports) puts a module in
    its place that loads asyncio on first attribute access. Only where asyncio is not loaded yet, and only
    on 3.13+ (LazyLoader is thread-safe there, gh-114763) in a Lambda's execution environment.
    """
    if "asyncio" in sys.modules or sys.version_info < (3, 13) or not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    spec = importlib.util.find_spec("asyncio")
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["asyncio"] = module
    spec.loader.exec_module(module)


_defer_asyncio()
