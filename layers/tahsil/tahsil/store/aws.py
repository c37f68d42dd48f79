"""AWS clients, built on first use (not at import) and shared by threads.

Built with botocore directly, from one session: boto3 itself is not needed (its import
costs ~30 ms more), and a session parses the endpoint and retry data once, which a new
session per client did again for every client (~40 ms each on a cold start). Keeping all
of it out of import time also lets tests set up moto before any client exists.

The session's data loader is botocore's own with two of its costs removed (a cold start
pays them once, on its first request; ``docs/decisions/cold-start.md``):
- a service's model is found by looking in that service's directory, where botocore lists
  every service directory (~420) and their versions to check that one name is among them
  (~13 ms per model type); the answer is the same, and an unknown name still raises
  ``UnknownServiceError`` naming the known services;
- the JSON files (endpoints.json is 1.2 MB, the DynamoDB model 0.5 MB) are decoded by pydantic-core's
  parser (already in the layer) to plain dicts, ordered since Python 3.7, where botocore's ``json.loads``
  with an ``OrderedDict`` hook takes about four times as long (~10 ms on a first request).

urllib3, the HTTP stack under botocore, is imported with this module instead: ~18 ms of CPU
(most of it compiling its URL regular expressions) that every function's first request
would spend otherwise. A Lambda's init phase runs at full CPU whatever the memory size,
while a 512 MB function's requests get about a third of a core, so the work costs less
there; the rest of botocore stays on first use, to keep the import within its budget
(``make bench``: import <= 150 ms, first request's set-up <= 100 ms).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Set
from typing import Any

import urllib3  # noqa: F401 - imported at init on purpose (above)

_clients: dict[str, Any] = {}
_session: list[Any] = []
_lock = threading.Lock()


class _Services(Set[str]):
    """What ``Loader.list_available_services`` answers, asked one name at a time.

    ``name in services`` looks only in that service's directories; iterating (an error
    message, ``Session.get_available_services``) lists every service as botocore does."""

    def __init__(self, loader: Any, type_name: str, list_all: Any) -> None:
        self._loader, self._type_name, self._list_all = loader, type_name, list_all
        self._all: list[str] | None = None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or os.sep in name or name.startswith("."):
            return False
        for root in self._loader.search_paths:
            folder = os.path.join(root, name)
            if not os.path.isdir(folder):
                continue
            for version in os.listdir(folder):
                if self._loader.file_loader.exists(os.path.join(folder, version, self._type_name)):
                    return True
        return False

    def _every(self) -> list[str]:
        if self._all is None:
            self._all = self._list_all(self._type_name)
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._every())

    def __len__(self) -> int:
        return len(self._every())


def _loader(data_path: str | None) -> Any:
    import gzip

    from botocore import loaders
    from pydantic_core import from_json

    class JSONFiles(loaders.JSONFileLoader):
        """botocore's JSON file loader (``.json``, then ``.json.gz``), decoding to plain dicts."""

        def load_file(self, file_path: str) -> Any:
            for path, opener in ((file_path + ".json", open), (file_path + ".json.gz", gzip.open)):
                if os.path.isfile(path):
                    with opener(path, "rb") as fp:
                        return from_json(fp.read())
            return None

    class Loader(loaders.Loader):
        def list_available_services(self, type_name: str) -> Any:
            return _Services(self, type_name, super().list_available_services)

    paths = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)] if data_path else []
    return Loader(extra_search_paths=paths, file_loader=JSONFiles())


def session() -> Any:
    """The one botocore session every client is made from."""
    with _lock:
        if not _session:
            import botocore.session

            made = botocore.session.get_session()
            made.register_component("data_loader", _loader(made.get_config_variable("data_path")))
            _session.append(made)
        return _session[0]


def client(service: str, *, quick: bool = False) -> Any:
    """``quick``: short timeouts and one retry, for best-effort calls on the response path (request logs)."""
    name = f"{service}:quick" if quick else service
    found = _clients.get(name)
    if found is not None:
        return found
    shared = session()
    with _lock:
        if name not in _clients:
            from botocore.config import Config

            if quick:
                config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=2,
                                max_pool_connections=16)
            else:
                config = Config(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=64)
            _clients[name] = shared.create_client(service, config=config)
        return _clients[name]


def reset() -> None:
    """Forget every client (tests switch endpoints between runs)."""
    with _lock:
        _clients.clear()
        _session.clear()
