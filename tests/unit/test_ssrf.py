"""SSRF guard for webhook delivery: hostile URLs refused, pinned POST bounded in time and size.

No network beyond 127.0.0.1: DNS is an injected fake, servers are local threads.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tahsil.kernel.errors import InvalidRequest
from tahsil.webhooks import transport
from tahsil.webhooks.guard import Target, UnsafeUrl, check_url
from tahsil.webhooks.transport import Answer, post

PUBLIC = "93.184.215.14"
PUBLIC6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class FakeDns:
    """getaddrinfo look-alike over a fixed table; records every name asked for."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = {
            "example.com": [PUBLIC],
            "dual.example": [PUBLIC6, PUBLIC],
            "internal.example": ["10.0.0.1"],
            "mixed.example": [PUBLIC, "10.0.0.1"],
            "mixed6.example": [PUBLIC, "fd12::1"],
            "metadata.example": ["169.254.169.254"],
            "v6ula.example": ["fd12::1"],
            "mapped.example": ["::ffff:10.0.0.1"],
            "mapped-public.example": [f"::ffff:{PUBLIC}"],
            "loop.example": ["127.0.0.1"],
            "nat64.example": ["64:ff9b::a9fe:a9fe"],
            "localhost": ["127.0.0.1", "::1"],
            **(table or {}),
        }
        self.calls: list[str] = []

    def __call__(self, host: str, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> list[Any]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for addr in self.table[host]:
            if ":" in addr:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (addr, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port)))
        return out


# (url, a fragment the refusal message must contain)
HOSTILE: list[tuple[str, str]] = [
    ("http://169.254.169.254/latest/meta-data", "cloud metadata address (169.254.169.254)"),
    ("https://169.254.169.254/latest/meta-data/iam/security-credentials/", "cloud metadata address"),
    ("http://[::1]/", "loopback address (::1)"),
    ("http://127.0.0.1/", "loopback address (127.0.0.1)"),
    ("https://127.0.0.2:8443/", "loopback address"),
    ("http://localhost/", "localhost"),
    ("https://foo.localhost/", "localhost"),
    ("http://0x7f000001/", "non-canonical IP address"),
    ("http://2130706433/", "non-canonical IP address"),
    ("http://017700000001/", "non-canonical IP address"),
    ("http://0177.0.0.1/", "non-canonical IP address"),
    ("http://127.1/", "non-canonical IP address"),
    ("http://0/", "non-canonical IP address"),
    ("http://0x7f.0.0.1/", "non-canonical IP address"),
    ("https://127.000.000.001/", "non-canonical IP address"),
    ("https://1.2.3.4.5/", "non-canonical IP address"),
    ("https://0x7F000001./", "non-canonical IP address"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped address embedding a loopback address"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped address embedding a loopback address"),
    ("https://[::ffff:169.254.169.254]/", "embedding the cloud metadata address"),
    ("http://0.0.0.0/", "unspecified"),
    ("https://0.0.0.0:443/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://[fd00::1]/", "unique-local address"),
    ("https://[fc00::]/", "unique-local address"),
    ("http://[fe80::1]/", "link-local address"),
    ("http://[fe80::1%25eth0]/", "zone id"),
    ("http://100.64.0.1/", "carrier-grade NAT address"),
    ("https://100.127.255.255/", "carrier-grade NAT address"),
    ("http://192.168.1.1/", "private address (192.168.1.1)"),
    ("http://172.16.0.1/", "private address"),
    ("https://172.31.255.255/", "private address"),
    ("https://10.0.0.1/", "private address"),
    ("https://169.254.1.1/", "link-local address"),
    ("https://192.0.0.170/", "IETF protocol-assignment address"),
    ("https://192.0.2.1/", "documentation address"),
    ("https://198.51.100.7/", "documentation address"),
    ("https://203.0.113.9/", "documentation address"),
    ("https://198.18.0.1/", "benchmarking address"),
    ("https://224.0.0.1/", "multicast address"),
    ("https://255.255.255.255/", "broadcast address"),
    ("https://240.0.0.1/", "reserved address"),
    ("https://[ff02::1]/", "multicast address"),
    ("https://[2001:db8::1]/", "documentation address"),
    ("https://[3fff::1]/", "documentation address"),
    ("https://[::127.0.0.1]/", "IPv4-compatible address"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo address"),
    ("http://[64:ff9b::a00:1]/", "NAT64 address embedding a private address"),
    ("https://[64:ff9b:1::1]/", "local-use NAT64 address"),
    ("http://[2002:a00:1::]/", "6to4 address embedding a private address"),
    ("https://[2002:a9fe:a9fe::]/", "6to4 address embedding the cloud metadata address"),
    ("https://user:pass@example.com/", "credentials"),
    ("https://user@example.com/", "credentials"),
    ("https://example.com\\@127.0.0.1/", "credentials"),
    ("https://127.0.0.1\\.example.com/", "not a valid domain name"),
    ("https://exa_mple$.com/", "not a valid domain name"),
    ("ftp://example.com/", "scheme 'ftp' is not allowed"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://example.com:70/_GET%20/", "scheme 'gopher' is not allowed"),
    ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
    ("data:text/html,<script>alert(1)</script>", "scheme 'data' is not allowed"),
    ("//example.com/hook", "no scheme"),
    ("https:///hook", "no host"),
    ("https://:443/hook", "no host"),
    ("https://example.com:0/", "port"),
    ("https://example.com:99999/", "port"),
    ("https://example.com:65536/", "port"),
    ("https://example.com:-1/", "port"),
    ("https://example.com:8o/", "port"),
    ("https://[::1/", "malformed"),
    ("https://::1/", "IPv6 addresses must be in brackets"),
    ("https://example.com/" + "a" * 2048, "longer than 2048 characters"),
    ("https://exa mple.com/", "whitespace or control characters"),
    ("https://example.com/\r\nX-Injected: 1", "whitespace or control characters"),
    ("https://internal.example/", "url resolves to a private address (10.0.0.1)"),
    ("https://mixed.example/", "url resolves to a private address (10.0.0.1)"),
    ("https://mixed6.example/", "url resolves to a unique-local address (fd12::1)"),
    ("https://metadata.example/hook", "url resolves to the cloud metadata address (169.254.169.254)"),
    ("https://v6ula.example/", "resolves to a unique-local address (fd12::1)"),
    ("https://mapped.example/", "resolves to an IPv4-mapped address embedding a private address"),
    ("https://loop.example/", "resolves to a loopback address (127.0.0.1)"),
    ("https://nat64.example/", "resolves to a NAT64 address embedding the cloud metadata address"),
    ("https://nxdomain.example/", "does not resolve"),
    ("https://intranet/", "fully qualified domain name"),
    ("http://example.com/", "https"),
    ("", "required"),
]


@pytest.mark.parametrize("live", [False, True], ids=["test", "live"])
@pytest.mark.parametrize(("url", "reason"), HOSTILE, ids=[u[:60] for u, _ in HOSTILE])
def test_hostile_url_is_refused(url: str, reason: str, live: bool) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        check_url(url, live=live, allow_loopback_http=False, resolver=FakeDns())
    err = caught.value
    assert reason in err.message
    assert isinstance(err, InvalidRequest)
    assert err.http_status == 400 and err.code == "UNSAFE_URL" and err.param == "url"
    assert err.body() == {"code": "UNSAFE_URL", "message": err.message, "param": "url"}


def test_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 35


@pytest.mark.parametrize(
    "url",
    ["http://0x7f000001/", "https://2130706433/", "https://017700000001/", "https://127.1/", "https://0177.0.0.1/", "https://0/"],
)
def test_non_canonical_ip_refused_before_any_resolution(url: str) -> None:
    dns = FakeDns()
    with pytest.raises(UnsafeUrl, match="non-canonical IP address"):
        check_url(url, live=False, allow_loopback_http=True, resolver=dns)
    assert dns.calls == []


def test_https_to_public_address_is_accepted_in_live_mode() -> None:
    dns = FakeDns()
    target = check_url("HTTPS://Example.COM/hooks/tahsil?x=1&y=2#frag", live=True, resolver=dns)
    assert target == Target(
        url="https://example.com/hooks/tahsil?x=1&y=2",
        scheme="https",
        host="example.com",
        port=443,
        path="/hooks/tahsil?x=1&y=2",
        addresses=(PUBLIC,),
    )
    assert dns.calls == ["example.com"]


def test_target_details() -> None:
    dns = FakeDns()
    assert check_url("https://example.com", live=True, resolver=dns).path == "/"
    t = check_url("https://example.com:8443/a b".replace(" ", "%20"), live=True, resolver=dns)
    assert (t.port, t.url, t.path) == (8443, "https://example.com:8443/a%20b", "/a%20b")
    assert check_url("https://example.com./", live=True, resolver=dns).host == "example.com"
    assert check_url("https://example.com:/", live=True, resolver=dns).port == 443
    # Non-ASCII: IDNA host, percent-encoded UTF-8 path.
    idn = check_url("https://bücher.example/ä?q=ü", live=True, resolver=FakeDns({"xn--bcher-kva.example": [PUBLIC]}))
    assert (idn.host, idn.path) == ("xn--bcher-kva.example", "/%C3%A4?q=%C3%BC")
    # IPv4 before IPv6; an IPv4-mapped public address becomes plain IPv4.
    assert check_url("https://dual.example/", live=True, resolver=dns).addresses == (PUBLIC, PUBLIC6)
    assert check_url("https://mapped-public.example/", live=True, resolver=dns).addresses == (PUBLIC,)
    # Public literals need no resolution.
    v6 = check_url(f"https://[{PUBLIC6}]:444/h", live=True, resolver=dns)
    assert (v6.host, v6.addresses, v6.url) == (PUBLIC6, (PUBLIC6,), f"https://[{PUBLIC6}]:444/h")
    assert check_url(f"https://{PUBLIC}/", live=True, resolver=dns).addresses == (PUBLIC,)
    assert check_url("https://[64:ff9b::5db8:d70e]/", live=True, resolver=dns).addresses == ("64:ff9b::5db8:d70e",)


def test_live_mode_refuses_http_even_for_loopback() -> None:
    with pytest.raises(UnsafeUrl, match="https in live mode"):
        check_url("http://example.com/", live=True, resolver=FakeDns())
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_url("http://127.0.0.1:8080/", live=True, allow_loopback_http=True, resolver=FakeDns())
    with pytest.raises(UnsafeUrl):
        check_url("http://localhost:8080/", live=True, allow_loopback_http=True, resolver=FakeDns())


def test_allow_loopback_http_accepts_only_literal_loopback_hosts() -> None:
    dns = FakeDns()
    t = check_url("http://127.0.0.1:8123/x", live=False, allow_loopback_http=True, resolver=dns)
    assert (t.scheme, t.host, t.port, t.path, t.addresses) == ("http", "127.0.0.1", 8123, "/x", ("127.0.0.1",))
    t = check_url("http://localhost:8123/", live=False, allow_loopback_http=True, resolver=dns)
    assert (t.host, t.addresses) == ("localhost", ("127.0.0.1", "::1"))
    t = check_url("http://[::1]:8123/", live=False, allow_loopback_http=True, resolver=dns)
    assert (t.host, t.addresses, t.url) == ("::1", ("::1",), "http://[::1]:8123/")
    refused = [
        ("http://10.0.0.1/", "private address"),
        ("http://127.0.0.2/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
        ("http://example.com/", "https"),
        ("http://loop.example/", "https"),
        ("https://loop.example/", "loopback"),
        ("http://169.254.169.254/", "metadata"),
    ]
    for url, reason in refused:
        with pytest.raises(UnsafeUrl, match=reason):
            check_url(url, live=False, allow_loopback_http=True, resolver=dns)
    # "localhost" that resolves somewhere private is still refused.
    with pytest.raises(UnsafeUrl, match=r"private address \(10.0.0.1\)"):
        check_url("http://localhost/", live=False, allow_loopback_http=True, resolver=FakeDns({"localhost": ["10.0.0.1"]}))


def test_resolver_errors_and_empty_answers_refuse() -> None:
    def broken(*args: Any) -> list[Any]:
        raise OSError("resolver down")

    with pytest.raises(UnsafeUrl, match="does not resolve"):
        check_url("https://example.com/", live=True, resolver=broken)
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        check_url("https://example.com/", live=True, resolver=lambda *a: [])


# --------------------------------------------------------------------------- post()

BIG_CHUNK = b"x" * 65536


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: list[tuple[str, dict[str, str], bytes]] = []
        self.stop = threading.Event()
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client hung up: expected here
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        srv.hits.append((self.path, dict(self.headers.items()), body))
        route = self.path.split("?", 1)[0]
        try:
            if route == "/ok":
                self._reply(200, b"hello webhook")
            elif route == "/redirect":
                self._reply(302, b"", Location="/landing")
            elif route == "/redirect-abs":
                self._reply(307, b"", Location=f"http://127.0.0.1:{srv.port}/landing")
            elif route == "/landing":
                self._reply(200, b"landed")
            elif route == "/slow":
                srv.stop.wait(5)
                self._reply(200, b"too late")
            elif route == "/drip":  # a header byte every 0.2 s: each read is quick, the whole is not
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                while not srv.stop.wait(0.2):
                    self.wfile.write(b"X-Drip: 1\r\n")
            elif route in ("/big", "/big-cl"):
                self.send_response(200)
                if route == "/big-cl":
                    self.send_header("Content-Length", str(100 * len(BIG_CHUNK)))
                self.end_headers()
                for _ in range(100):  # 6.5 MB at most, or until the client hangs up
                    if srv.stop.is_set():
                        break
                    self.wfile.write(BIG_CHUNK)
            else:
                self._reply(404, b"no such route")
        except OSError:
            pass


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[tuple[_Server, threading.Thread]] = []

    def start(tls: ssl.SSLContext | None = None) -> _Server:
        srv = _Server(tls)
        thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((srv, thread))
        return srv

    try:
        yield start
    finally:
        for srv, thread in servers:
            srv.stop.set()
            srv.shutdown()
            srv.server_close()
            thread.join(timeout=2)


@pytest.fixture
def server(serve: Any) -> _Server:
    return serve()


def local(srv: _Server, path: str) -> Target:
    return check_url(f"http://127.0.0.1:{srv.port}{path}", live=False, allow_loopback_http=True)


def test_post_returns_status_and_body_prefix(server: _Server) -> None:
    headers = {"Content-Type": "application/json", "webhook-id": "msg_1", "Host": "evil.example"}
    answer = post(local(server, "/ok?a=1"), b'{"type":"payment.captured"}', headers)
    assert answer.status == 200 and answer.body_prefix == b"hello webhook" and answer.error_class is None
    assert isinstance(answer, Answer) and 0 <= answer.elapsed_ms < 2000
    ((path, seen, body),) = server.hits
    assert path == "/ok?a=1" and body == b'{"type":"payment.captured"}'
    assert seen["Host"] == f"127.0.0.1:{server.port}"  # the caller's Host is ignored
    assert seen["webhook-id"] == "msg_1" and seen["Content-Type"] == "application/json"
    assert seen["Content-Length"] == str(len(body)) and "Transfer-Encoding" not in seen
    assert seen["User-Agent"] == transport.USER_AGENT

    short = post(local(server, "/ok"), b"{}", {}, keep=5)
    assert (short.status, short.body_prefix, short.error_class) == (200, b"hello", None)


def test_post_connects_to_the_checked_address_without_a_second_lookup(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    target = check_url(f"http://localhost:{server.port}/ok", live=False, allow_loopback_http=True, resolver=FakeDns())
    assert target.addresses[0] == "127.0.0.1"

    def rebinding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("post() must not resolve the host again")

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    answer = post(target, b"{}", {})
    assert answer.status == 200 and answer.error_class is None
    assert server.hits[0][1]["Host"] == f"localhost:{server.port}"


@pytest.mark.parametrize("path", ["/redirect", "/redirect-abs"])
def test_post_follows_no_redirect(server: _Server, path: str) -> None:
    answer = post(local(server, path), b"{}", {})
    assert answer.status in (302, 307) and answer.error_class is None
    assert [hit[0] for hit in server.hits] == [path]  # /landing never requested


def test_post_times_out_on_a_slow_server(server: _Server) -> None:
    started = time.monotonic()
    answer = post(local(server, "/slow"), b"{}", {}, connect_timeout=1, total_timeout=1)
    took = time.monotonic() - started
    assert (answer.status, answer.error_class) == (None, "timeout")
    assert 0.9 <= took < 2.0 and 900 <= answer.elapsed_ms < 2000


def test_post_total_deadline_holds_against_a_dripping_server(server: _Server) -> None:
    started = time.monotonic()
    answer = post(local(server, "/drip"), b"{}", {}, total_timeout=1)
    assert (answer.status, answer.error_class) == (None, "timeout")
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("path", ["/big", "/big-cl"])
def test_post_cuts_a_large_response(server: _Server, path: str) -> None:
    started = time.monotonic()
    answer = post(local(server, path), b"{}", {}, max_response=100_000, keep=1024)
    assert answer.status == 200 and answer.error_class == "too_large"
    assert answer.body_prefix == b"x" * 1024
    assert time.monotonic() - started < 2.0


def test_too_large_only_when_the_body_exceeds_max_response(server: _Server) -> None:
    exact = post(local(server, "/ok"), b"{}", {}, max_response=len(b"hello webhook"))
    assert (exact.status, exact.body_prefix, exact.error_class) == (200, b"hello webhook", None)
    over = post(local(server, "/ok"), b"{}", {}, max_response=len(b"hello webhook") - 1)
    assert (over.status, over.error_class) == (200, "too_large")


def test_post_connection_refused_is_connect_error() -> None:
    with socket.socket() as holder:  # bound, never listening: the port is ours and refuses
        holder.bind(("127.0.0.1", 0))
        target = check_url(f"http://127.0.0.1:{holder.getsockname()[1]}/", live=False, allow_loopback_http=True)
        answer = post(target, b"{}", {}, connect_timeout=1, total_timeout=2)
    assert (answer.status, answer.body_prefix, answer.error_class) == (None, b"", "connect_error")


@pytest.mark.parametrize(
    "target",
    [
        Target("http://10.0.0.1/", "http", "10.0.0.1", 80, "/", ("10.0.0.1",)),
        Target("https://example.com/", "https", "example.com", 443, "/", ("127.0.0.1",)),
        Target("https://example.com/", "https", "example.com", 443, "/", ("169.254.169.254",)),
        Target("https://example.com/", "https", "example.com", 443, "/", ("::ffff:10.0.0.1",)),
        Target("https://example.com/", "https", "example.com", 443, "/", ("not-an-ip",)),
        Target("https://example.com/", "https", "example.com", 443, "/", ()),
    ],
)
def test_post_refuses_a_hand_made_target_with_an_unsafe_address(target: Target) -> None:
    answer = post(target, b"{}", {}, connect_timeout=0.2, total_timeout=0.5)
    assert (answer.status, answer.error_class) == (None, "refused_address")


# --------------------------------------------------------------------------- TLS


def _cert(tmp_path: Path, name: str) -> tuple[Path, Path, str]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_bytes(pem)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, pem.decode()


def _tls_server(serve: Any, tmp_path: Path, name: str) -> tuple[_Server, ssl.SSLContext, list[str | None]]:
    cert_file, key_file, pem = _cert(tmp_path, name)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)
    return serve(server_ctx), ssl.create_default_context(cadata=pem), sni


def test_post_tls_verifies_the_original_hostname_and_sends_sni(serve: Any, tmp_path: Path) -> None:
    srv, trusting, sni = _tls_server(serve, tmp_path, "localhost")
    target = check_url(f"https://localhost:{srv.port}/ok", live=False, allow_loopback_http=True, resolver=FakeDns())
    assert target.addresses[0] == "127.0.0.1"
    answer = post(target, b"{}", {}, tls_context=trusting, total_timeout=3)
    assert (answer.status, answer.body_prefix, answer.error_class) == (200, b"hello webhook", None)
    assert sni == ["localhost"]
    # The system trust store does not know our self-signed certificate.
    refused = post(target, b"{}", {}, total_timeout=3)
    assert (refused.status, refused.error_class) == (None, "tls_error")


def test_post_tls_refuses_a_certificate_for_another_name(serve: Any, tmp_path: Path) -> None:
    srv, trusting, _ = _tls_server(serve, tmp_path, "other.example")
    target = check_url(f"https://localhost:{srv.port}/ok", live=False, allow_loopback_http=True, resolver=FakeDns())
    answer = post(target, b"{}", {}, tls_context=trusting, total_timeout=3)
    assert (answer.status, answer.error_class) == (None, "tls_error")
    assert srv.hits == []
