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

    A package's submodules are imported on their own without running the package's code, and so are the
    names in ``_tahsil_names`` (name -> the submodule that defines it): ``from package import Name``
    imports that one submodule. Any other name runs the package's own code, as a plain import would have.
    """

    _tahsil_names: dict[str, str]

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            return self._tahsil_load(name)
        where = self.__dict__.get("_tahsil_names", {}).get(name)
        if self.__spec__ is not None and self.__spec__.submodule_search_locations is not None:
            try:
                if where is not None:
                    value = getattr(importlib.import_module(f"{self.__name__}.{where}"), name)
                    setattr(self, name, value)
                    return value
                if importlib.util.find_spec(f"{self.__name__}.{name}") is not None:
                    return importlib.import_module(f"{self.__name__}.{name}")
            except (ImportError, AttributeError):
                pass  # not where the map says, or not a submodule: the package's own code decides
        return self._tahsil_load(name)

    def _tahsil_load(self, name: str) -> object:
        with _DEFER_LOCK:  # one thread runs the module's code; another waits for it, then reads the name
            if type(self) is _DeferredModule:
                spec = self.__spec__
                if spec is None or spec.loader is None:
                    raise AttributeError(name)
                self.__class__ = types.ModuleType  # from here on an ordinary module, as if just imported
                spec.loader.exec_module(self)
        return object.__getattribute__(self, name)


def _defer(name: str, names: dict[str, str] | None = None) -> None:
    """Load module ``name`` on first use instead of at import (see ``_DeferredModule``)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _DeferredModule
    module._tahsil_names = dict(names or {})
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:  # as an import would: ``importlib.resources`` is an attribute of ``importlib``
        setattr(importlib.import_module(parent), child, module)


def _defer_unused_stdlib() -> None:
    """Standard library modules a function's import pulls in and its requests do not use, loaded on first
    use instead, in a Lambda execution environment (everywhere else they load as usual):

    - asyncio: Powertools' event handler package imports its AppSync resolvers, and asyncio with them,
      though a REST handler never awaits (~7-9 ms of CPU);
    - ``importlib.resources`` and ``zipfile``: pydantic imports ``importlib.metadata`` to look for plugins,
      which imports both; ``importlib.resources`` registers its ``singledispatch`` functions by their type
      hints at import (~3 ms) and ``zipfile`` brings shutil, bz2 and lzma (~1-2 ms). The submodules
      ``importlib.metadata`` uses (``importlib.resources.abc``) still import on their own.

    docs/decisions.md, "Cold start, second pass".
    """
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        for name in ("asyncio", "importlib.resources", "zipfile"):
            _defer(name)


def defer_unused_powertools() -> None:
    """In an API function in Lambda: Powertools' event handler and event classes, minus what a REST API uses.

    The two packages' ``__init__`` import every resolver (AppSync, Bedrock, VPC Lattice...) and ~40 event
    classes; a REST function needs ``APIGatewayRestResolver`` and the seven event classes its module names.
    Those names map to their submodules, which load on their own; any other name runs the package's code.
    Called by ``tahsil.api.lean``, which ``tahsil.api.http`` and ``tahsil.api.params`` import first, so only
    API functions do it: a queue worker imports the event classes' modules directly, and some of those
    import names back from the package while they load, which only works when the package's own code ran
    first (so it does, there).
    """
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    _defer("aws_lambda_powertools.event_handler", {
        name: "api_gateway" for name in ("APIGatewayRestResolver", "Response", "CORSConfig", "ApiGatewayResolver")})
    _defer("aws_lambda_powertools.utilities.data_classes", {
        "ALBEvent": "alb_event", "APIGatewayProxyEvent": "api_gateway_proxy_event",
        "APIGatewayProxyEventV2": "api_gateway_proxy_event", "BedrockAgentEvent": "bedrock_agent_event",
        "LambdaFunctionUrlEvent": "lambda_function_url_event", "VPCLatticeEvent": "vpc_lattice",
        "VPCLatticeEventV2": "vpc_lattice"})


_defer_unused_stdlib()
