"""The webhook transport: one POST to an address the SSRF guard (``tahsil.webhooks.guard``) checked.

``post`` connects only to the ``Target``'s first checked address (``guard.pinned_address``) — no second
DNS lookup, so a rebinding DNS server gains nothing — while the Host header, TLS SNI and certificate
verification use the original hostname. It follows no redirects (a 3xx is just a status), bounds
connect time, total time (every read gets the remaining budget as its timeout) and response size, and
never raises for network trouble: it returns an ``Answer`` whose ``error_class`` names what happened.

Knows nothing of endpoints, events or signatures (``tahsil.webhooks.delivery`` uses it). Standard
library only.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import io
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from tahsil.webhooks.guard import DEFAULT_PORTS, Target, pinned_address

__all__ = ["USER_AGENT", "Answer", "post"]

USER_AGENT = "Tahsil-Webhooks/1"


@dataclass(frozen=True)
class Answer:
    status: int | None  # HTTP status, or None when no response was read
    body_prefix: bytes  # the first `keep` bytes of the body
    elapsed_ms: int
    # None, or: "refused_address", "connect_error", "tls_error", "timeout", "protocol_error",
    # "network_error", "too_large" (status still set: the body went beyond max_response).
    error_class: str | None



class _Failure(Exception):
    def __init__(self, error_class: str) -> None:
        super().__init__(error_class)
        self.error_class = error_class


def _arm(sock: socket.socket, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("total timeout exceeded")
    sock.settimeout(remaining)


class _DeadlineReader(io.RawIOBase):
    """Raw reads from the socket, each with the remaining time budget as its timeout."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        _arm(self._sock, self._deadline)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client needs from a socket (sendall, makefile, close), deadline-bound.

    close() is a no-op: post() closes the real socket itself once the response is read.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            _arm(self._sock, self._deadline)
            sent = self._sock.send(view[:65536])
            view = view[sent:]

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        pass


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection whose connect() dials a fixed, already-checked IP address.

    ``host`` stays the original hostname: http.client uses it for nothing but the Host
    header (which post() sets itself), and TLS uses it for SNI and certificate checks.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        address: str,
        deadline: float,
        connect_timeout: float,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self._address = address
        self._deadline = deadline
        self._connect_timeout = connect_timeout
        self._tls_context = tls_context
        self._raw: socket.socket | None = None

    def connect(self) -> None:
        family = socket.AF_INET6 if ":" in self._address else socket.AF_INET
        sockaddr: tuple[Any, ...] = (self._address, self.port, 0, 0) if family == socket.AF_INET6 else (self._address, self.port)
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _Failure("timeout")
        raw = socket.socket(family, socket.SOCK_STREAM)
        self._raw = raw
        try:
            raw.settimeout(min(self._connect_timeout, remaining))
            raw.connect(sockaddr)  # an IP literal: no DNS lookup
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except TimeoutError as exc:
            raise _Failure("timeout") from exc
        except OSError as exc:
            raise _Failure("connect_error") from exc
        if self._tls_context is not None:
            try:
                _arm(raw, self._deadline)
                tls = self._tls_context.wrap_socket(raw, server_hostname=self.host)
            except TimeoutError as exc:
                raise _Failure("timeout") from exc
            except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
                raise _Failure("tls_error") from exc
            self._raw = raw = tls
        self.sock = _DeadlineSocket(raw, self._deadline)

    def close_all(self) -> None:
        self.close()
        if self._raw is not None:
            with contextlib.suppress(OSError):
                self._raw.close()
            self._raw = None


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float = 5.0,
    total_timeout: float = 15.0,
    max_response: int = 65536,
    keep: int = 1024,
    tls_context: ssl.SSLContext | None = None,
) -> Answer:
    """POST ``body`` to ``target`` at its first checked address; never raises for network errors."""
    started = time.monotonic()
    deadline = started + total_timeout

    def answer(status: int | None, prefix: bytes, error: str | None) -> Answer:
        return Answer(status, bytes(prefix), int((time.monotonic() - started) * 1000), error)

    if target.scheme not in DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme {target.scheme!r}")
    address = pinned_address(target)  # checked again: a Target that did not come from check_url stays out
    if address is None:
        return answer(None, b"", "refused_address")

    context = None
    if target.scheme == "https":
        context = tls_context or _default_tls_context()
    conn = _PinnedConnection(
        target.host, target.port, address=address, deadline=deadline, connect_timeout=connect_timeout, tls_context=context
    )
    host_header = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != DEFAULT_PORTS[target.scheme]:
        host_header += f":{target.port}"

    status: int | None = None
    prefix = bytearray()
    try:
        conn.connect()
        conn.putrequest("POST", target.path, skip_host=True)
        conn.putheader("Host", host_header)
        sent = {"host", "content-length", "connection", "transfer-encoding"}
        for name, value in headers.items():
            if name.lower() not in sent:
                conn.putheader(name, value)
        if "user-agent" not in {name.lower() for name in headers}:
            conn.putheader("User-Agent", USER_AGENT)
        conn.putheader("Content-Length", str(len(body)))
        conn.putheader("Connection", "close")
        conn.endheaders(body)
        response = conn.getresponse()  # a 3xx is returned as is: http.client follows nothing
        status = response.status
        limit = max_response + 1  # one byte more tells whether the body is too large
        got = 0
        while got < limit:
            chunk = response.read(min(16384, limit - got))
            if not chunk:
                break
            got += len(chunk)
            if len(prefix) < keep:
                prefix += chunk[: keep - len(prefix)]
        return answer(status, prefix, "too_large" if got > max_response else None)
    except _Failure as failure:
        return answer(status, prefix, failure.error_class)
    except TimeoutError:
        return answer(status, prefix, "timeout")
    except http.client.HTTPException:
        return answer(status, prefix, "protocol_error")
    except ssl.SSLError:
        return answer(status, prefix, "tls_error")
    except OSError:
        return answer(status, prefix, "network_error")
    finally:
        conn.close_all()
