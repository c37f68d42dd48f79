"""The SSRF guard: which merchant-supplied webhook URLs, and which addresses, we may send to.

``check_url`` refuses anything that could reach inside our network, and returns a ``Target`` that
carries the addresses it resolved and checked. It runs when a merchant registers an endpoint (a 400
``UNSAFE_URL`` with ``param="url"``) and again before every delivery (DNS can change).
``pinned_address`` checks a ``Target``'s first address again for the transport
(``tahsil.webhooks.transport``), which dials that address and nothing else.

Validation only: this module sends nothing and never imports the transport. Standard library only.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from tahsil.kernel.errors import InvalidRequest

__all__ = ["DEFAULT_PORTS", "LOOPBACK_HOSTS", "Target", "UnsafeUrl", "check_url", "pinned_address"]

MAX_URL_LENGTH = 2048
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[..., Any]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(InvalidRequest):
    """A URL we refuse to send to; the message names the reason."""

    code = "UNSAFE_URL"

    def __init__(self, message: str, *, param: str | None = "url", **extra: Any) -> None:
        super().__init__(message, param=param, **extra)


@dataclass(frozen=True)
class Target:
    url: str  # normalized: no fragment, lower-case scheme and host, default port omitted
    scheme: str  # "http" | "https"
    host: str  # hostname (IDNA/ASCII, lower case) or IP literal without brackets
    port: int
    path: str  # path including "?query"
    addresses: tuple[str, ...]  # resolved and all checked; post() connects to addresses[0]



# --------------------------------------------------------------------------- addresses

_V4_BLOCKS: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.169.254/32", "the cloud metadata address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol-assignment address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay anycast address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)

_V6_BLOCKS: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "a deprecated IPv4-compatible address"),
        ("::ffff:0:0:0/96", "an IPv4-translated address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo address"),
        ("2001:2::/48", "a benchmarking address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a unique-local address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_6TO4 = ipaddress.IPv6Network("2002::/16")


def _v4_reason(ip: ipaddress.IPv4Address, allow_loopback: bool) -> str | None:
    if allow_loopback and ip.is_loopback:
        return None
    for net, why in _V4_BLOCKS:
        if ip in net:
            return why
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return "a non-global address"
    return None


def _classify(ip: IPAddress, allow_loopback: bool) -> tuple[str | None, str]:
    """(why the address is unsafe or None, the address to connect to)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_reason(ip, allow_loopback), str(ip)
    embedded: tuple[str, ipaddress.IPv4Address] | None = None
    if ip in _MAPPED:
        embedded = ("an IPv4-mapped address", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    elif ip in _NAT64:
        embedded = ("a NAT64 address", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    elif ip in _6TO4:
        embedded = ("a 6to4 address", ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF))
    if embedded:
        kind, v4 = embedded
        inner = _v4_reason(v4, allow_loopback)
        if inner:
            return f"{kind} embedding {inner} {v4}", str(ip)
        # An IPv4-mapped address *is* the IPv4 address: connect over IPv4.
        return None, str(v4) if ip in _MAPPED else str(ip)
    if allow_loopback and ip.is_loopback:
        return None, str(ip)
    for net, why in _V6_BLOCKS:
        if ip in net:
            return why, str(ip)
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_site_local:
        return "a non-global address", str(ip)
    return None, str(ip)


# --------------------------------------------------------------------------- check_url

_HOST_CHARS = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_DIGITS = re.compile(r"[0-9]+")
_HEX_LABEL = re.compile(r"0x[0-9a-f]*")
_CANONICAL_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")
_PATH_SAFE = "".join(c for c in string.printable if not c.isspace())


def _numeric_ipv4_host(host: str) -> bool:
    """WHATWG "ends in a number": browsers and inet_aton read such a host as an IPv4 address."""
    last = host.rsplit(".", 1)[-1]
    return bool(_DIGITS.fullmatch(last) or _HEX_LABEL.fullmatch(last))


def _canonical_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if len(parts) != 4 or not all(_CANONICAL_OCTET.fullmatch(p) and int(p) <= 255 for p in parts):
        return None
    return ipaddress.IPv4Address(host)


def _split_netloc(netloc: str) -> tuple[str, bool, str | None]:
    """(host, bracketed, port text or None); raises UnsafeUrl on a malformed authority."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise UnsafeUrl("url has a malformed IPv6 host")
        host, rest = netloc[1:end], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UnsafeUrl("url has a malformed host")
        return host, True, rest[1:] if rest else None
    if "[" in netloc or "]" in netloc:
        raise UnsafeUrl("url has a malformed host")
    if netloc.count(":") > 1:
        raise UnsafeUrl("url has a malformed host (IPv6 addresses must be in brackets)")
    host, sep, port = netloc.partition(":")
    return host, False, port if sep else None


def check_url(url: str, *, live: bool, allow_loopback_http: bool = False, resolver: Resolver = socket.getaddrinfo) -> Target:
    """Return a Target for ``url`` or raise UnsafeUrl naming why it is refused.

    ``resolver`` has ``socket.getaddrinfo``'s signature; it is called as
    ``resolver(host, port, 0, socket.SOCK_STREAM)``. Every address it returns must be
    globally routable. With ``allow_loopback_http`` (test mode of the local runtime, never
    with ``live``), http and loopback addresses are allowed for a host written literally as
    localhost, 127.0.0.1 or [::1] — nothing else private.
    """
    if not isinstance(url, str) or not url:
        raise UnsafeUrl("url is required")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        raise UnsafeUrl("url contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UnsafeUrl("url is malformed") from exc

    scheme = parts.scheme
    if not scheme:
        raise UnsafeUrl("url has no scheme (use https://)")
    if scheme not in DEFAULT_PORTS:
        raise UnsafeUrl(f"url scheme '{scheme[:20]}' is not allowed (use https)")
    netloc = parts.netloc
    if "@" in netloc:
        raise UnsafeUrl("url must not contain credentials (user:pass@)")
    raw_host, bracketed, port_text = _split_netloc(netloc)
    if not raw_host:
        raise UnsafeUrl("url has no host")

    if port_text:  # "host:" with an empty port means the default port
        if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
            raise UnsafeUrl("url port must be a number between 1 and 65535")
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[scheme]

    # The host: an IPv6 literal, a canonical dotted-quad IPv4, or a DNS name.
    literal: IPAddress | None = None
    if bracketed:
        if "%" in raw_host:
            raise UnsafeUrl("url host must not contain an IPv6 zone id")
        try:
            literal = ipaddress.IPv6Address(raw_host)
        except ValueError as exc:
            raise UnsafeUrl("url host is not a valid IPv6 address") from exc
        host = str(literal)
    else:
        host = raw_host.lower()
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise UnsafeUrl("url host is not a valid domain name") from exc
        if host.endswith("."):
            host = host[:-1]
        if not _HOST_CHARS.fullmatch(host) or len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
            raise UnsafeUrl("url host is not a valid domain name")
        if _numeric_ipv4_host(host):
            literal = _canonical_ipv4(host)
            if literal is None:
                raise UnsafeUrl(f"url host is a non-canonical IP address ({host[:64]})")
            host = str(literal)

    loopback_ok = allow_loopback_http and not live and host in LOOPBACK_HOSTS

    if literal is not None:
        why, address = _classify(literal, loopback_ok)
        if why:
            raise UnsafeUrl(f"url host is {why} ({literal})")
        addresses: tuple[str, ...] = (address,)
    else:
        addresses = ()
        if not loopback_ok:
            if host == "localhost" or host.endswith(".localhost"):
                raise UnsafeUrl("url host is localhost")
            if "." not in host:
                raise UnsafeUrl("url host must be a fully qualified domain name")

    if scheme == "http":
        if live:
            raise UnsafeUrl("url must use https in live mode")
        if not loopback_ok:
            raise UnsafeUrl("url must use https (http is only allowed for localhost in test mode)")

    if literal is None:
        addresses = _resolve(host, port, resolver, loopback_ok)

    host_header = f"[{host}]" if ":" in host else host
    if port != DEFAULT_PORTS[scheme]:
        host_header += f":{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_PATH_SAFE)
    return Target(url=f"{scheme}://{host_header}{path}", scheme=scheme, host=host, port=port, path=path, addresses=addresses)


def _resolve(host: str, port: int, resolver: Resolver, loopback_ok: bool) -> tuple[str, ...]:
    try:
        infos = resolver(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise UnsafeUrl(f"url host does not resolve ({host})") from exc
    found: list[str] = []
    for info in infos or ():
        family, sockaddr = info[0], info[4]
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError as exc:
            raise UnsafeUrl(f"url resolves to an invalid address ({text[:64]})") from exc
        why, address = _classify(ip, loopback_ok)
        if why:
            raise UnsafeUrl(f"url resolves to {why} ({ip})")
        if address not in found:
            found.append(address)
    if not found:
        raise UnsafeUrl(f"url host does not resolve ({host})")
    # IPv4 first: Lambda functions outside a dual-stack VPC have no IPv6 egress.
    found.sort(key=lambda a: ":" in a)
    return tuple(found)


def pinned_address(target: Target) -> str | None:
    """The address to connect to for ``target`` (its first checked one), or None when it is not safe:
    defence in depth, a Target that did not come from ``check_url`` must not reach inside."""
    try:
        ip = ipaddress.ip_address(target.addresses[0])
    except (IndexError, ValueError):
        return None
    why, address = _classify(ip, allow_loopback=target.host in LOOPBACK_HOSTS)
    return None if why else address
