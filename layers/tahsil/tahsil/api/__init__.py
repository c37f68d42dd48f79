"""The HTTP contract: the Powertools resolver and entry point, the response envelope, authentication
(keys, signatures, dashboard tokens), rate limits, Idempotency-Key handling, request logs, API
version rendering, tracing, and the wrappers of the queue and state-machine workers.

The top layer of the package: it may import every other ``tahsil`` package; none may import it.
Handlers (``functions/*/app.py``) import ``tahsil.api`` plus the domain module they call.
"""

import importlib.util
import os
import sys
import threading
import types

_DEFER_LOCK = threading.RLock()


class _DeferredModule(types.ModuleType):
    """A module whose code runs on the first access to a name it does not have yet.

    Its ``__spec__``, ``__path__``, ``__name__`` and the other attributes the import system reads are set
    from the start, so ``import asyncio`` elsewhere finds it in ``sys.modules`` without loading it
    (importlib's own ``LazyLoader`` loads on any attribute, ``__spec__`` included, which every later
    ``import`` of the module reads: it would load at the first ``import asyncio`` anywhere).
    """

    def __getattr__(self, name: str) -> object:
        with _DEFER_LOCK:  # one thread runs the module's code; another waits for it, then reads the name
            if type(self) is _DeferredModule:
                spec = self.__spec__
                if spec is None or spec.loader is None:
                    raise AttributeError(name)
                self.__class__ = types.ModuleType  # from here on an ordinary module, as if just imported
                spec.loader.exec_module(self)
        return object.__getattribute__(self, name)


def _defer(name: str) -> None:
    """Load module ``name`` on first use instead of at import (see ``_DeferredModule``)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _DeferredModule
    sys.modules[name] = module


def _defer_asyncio() -> None:
    """Load asyncio on first use instead of at import, in a Lambda execution environment.

    Powertools' event handler package imports its AppSync resolvers, and asyncio with them, though a REST
    handler never awaits: ~9 ms of CPU in every API function's cold start (docs/benchmarks.md, "Cold start
    as built"). Only in Lambda, where nothing else is running; everywhere else asyncio loads as usual.
    """
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        _defer("asyncio")


_defer_asyncio()
