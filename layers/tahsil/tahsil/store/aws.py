"""AWS clients, built on first use (not at import) and shared by threads.

Built with botocore directly, from one session: boto3 itself is not needed (its import
costs ~30 ms more), and a session parses the endpoint and retry data once, which a new
session per client did again for every client (~40 ms each on a cold start). Keeping all
of it out of import time also lets tests set up moto before any client exists.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
_session: list[Any] = []
_lock = threading.Lock()


def client(service: str, *, quick: bool = False) -> Any:
    """``quick``: short timeouts and one retry, for best-effort calls on the response path (request logs)."""
    name = f"{service}:quick" if quick else service
    found = _clients.get(name)
    if found is not None:
        return found
    with _lock:
        if name not in _clients:
            import botocore.session
            from botocore.config import Config

            if quick:
                config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=2,
                                max_pool_connections=16)
            else:
                config = Config(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=64)
            if not _session:
                _session.append(botocore.session.get_session())
            _clients[name] = _session[0].create_client(service, config=config)
        return _clients[name]


def reset() -> None:
    """Forget every client (tests switch endpoints between runs)."""
    with _lock:
        _clients.clear()
        _session.clear()
