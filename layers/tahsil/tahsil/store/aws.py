"""boto3 clients, built on first use (not at import) and shared by threads.

Importing boto3 costs ~100 ms; keeping it out of import time keeps cold starts short
and lets tests set up moto before any client exists.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str, *, quick: bool = False) -> Any:
    """``quick``: short timeouts and one retry, for best-effort calls on the response path (request logs)."""
    name = f"{service}:quick" if quick else service
    found = _clients.get(name)
    if found is not None:
        return found
    with _lock:
        if name not in _clients:
            import boto3
            from botocore.config import Config

            if quick:
                config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=2,
                                max_pool_connections=16)
            else:
                config = Config(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=64)
            _clients[name] = boto3.session.Session().client(service, config=config)
        return _clients[name]


def reset() -> None:
    """Forget every client (tests switch endpoints between runs)."""
    with _lock:
        _clients.clear()
