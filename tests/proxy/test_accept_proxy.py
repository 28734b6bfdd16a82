"""
accept_proxy: a PROXY protocol header (v1 or v2) from a load balancer in
front, read before TLS; its client address used in the logs and passed on
in a PROXY header to the backend; anything else closed.  Headers are written
here by hand (v1) and by the proxy's own writer (v2, checked against an
independent parser in test_proxy_protocol.py).
"""

import ipaddress
import signal
import socket
import time

import pytest
from proxyprotocol.v2 import ProxyProtocolV2

from tests.proxy.helpers import (
    TIMEOUT,
    clientContext,
    echo,
    echoRoundTrip,
    readToEnd,
    runProxy,
    serverContext,
)
from tests.proxy.hostile import assertNoTraceback, parseLogfmt
from tests.proxy.test_proxy_protocol import readHeader
from tlsfast.proxy._acceptproxy import ProxyHeaderError, _addresses, splitHeader
from tlsfast.proxy._proxyheader import ClientTLS, headerV1, headerV2

V1 = b"PROXY TCP4 203.0.113.7 127.0.0.1 40123 443\r\n"


# -- framing and parsing ------------------------------------------------------

def test_v1_with_the_stream_behind_it():
    result, rest = splitHeader(V1 + b"\x16\x03\x01hello")
    assert result.source == (ipaddress.ip_address("203.0.113.7"), 40123)
    assert result.dest == (ipaddress.ip_address("127.0.0.1"), 443)
    assert rest == b"\x16\x03\x01hello"


def test_v1_byte_by_byte():
    for end in range(len(V1)):
        assert splitHeader(V1[:end]) is None, end
    result, rest = splitHeader(V1)
    assert rest == b"" and result.source[1] == 40123


def test_v2_with_tlvs_and_ipv6():
    header = headerV2(("2001:db8::1", 5000), ("2001:db8::2", 443),
                      ClientTLS(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", serverName="example.com",
                                alpn=b"h2", certificateCN=None))
    for end in range(len(header)):
        assert splitHeader(header[:end]) is None, end
    result, rest = splitHeader(header + b"next")
    assert rest == b"next"
    peer, host = _addresses(result)
    assert (peer.type, peer.host, peer.port) == ("TCP", "2001:db8::1", 5000)
    assert (host.host, host.port) == ("2001:db8::2", 443)


def test_health_checks_keep_the_connections_own_addresses():
    local = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0, 0])  # v2 LOCAL, no addresses
    result, rest = splitHeader(local + b"x")
    assert rest == b"x" and _addresses(result) == (None, None)
    result, _ = splitHeader(headerV1(("unix-socket", 0), ("127.0.0.1", 1)))  # PROXY UNKNOWN
    assert _addresses(result) == (None, None)


@pytest.mark.parametrize("data, message", [
    (b"\x16\x03\x01\x02\x00", "no PROXY protocol header"),  # a TLS ClientHello
    (b"GET / HTTP/1.1\r\n", "no PROXY protocol header"),
    (b"PROXY TCP4 " + b"1" * 120, "longer than 107"),
    (b"PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n", "invalid PROXY header"),
    (b"PROXY TCP4 1.2.3.4 127.0.0.1 1 99999\r\n", "invalid PROXY header"),
    (b"PROXY SPX 1 2 3 4\r\n", "invalid PROXY header"),
    (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x30, 0x11, 0, 0]), "invalid PROXY header"),  # version 3
])
def test_bad_headers_are_refused_early(data, message):
    with pytest.raises(ProxyHeaderError, match=message):
        splitHeader(data)


# -- through the proxy --------------------------------------------------------

def tlsAfter(header: bytes, port: int, context, name="example.com"):
    """A TCP connection that sends C{header}, then speaks TLS."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.sendall(header)
    return context.wrap_socket(raw, server_hostname=name, suppress_ragged_eofs=False)


def test_terminate_logs_and_forwards_the_balancers_client(pems, start_proxy, backend):
    seen = []

    def handler(sock):
        seen.append(readHeader(sock, "v2"))
        echo(sock)

    server = backend(handler)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--accept-proxy", "--proxy-protocol", "v2")
    with tlsAfter(V1, proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 256 * 1024)
        assert received == sent
    [result] = seen
    assert result.source == (ipaddress.ip_address("203.0.113.7"), 40123)
    assert result.dest == (ipaddress.ip_address("127.0.0.1"), 443)
    assert result.tlv.ssl.has_ssl and result.tlv.authority == "example.com"
    [close] = proxy.waitFor(r"event=close .*by=client")
    assert "client=203.0.113.7:40123" in close


def test_plain_listener_with_a_v2_header_and_half_close(pems, start_proxy, backend):
    """originate: plain in; the header's bytes never reach the backend; FIN still passed on."""
    context = serverContext(pems.backendCert, pems.backendKey)

    def handler(sock):
        with context.wrap_socket(sock, server_side=True) as tls:
            tls.sendall(b"got:" + readToEnd(tls))
            tls.unwrap()

    server = backend(handler)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "originate", "--backend-ca", pems.ca, "--backend-name", "backend.example",
                        "--accept-proxy")
    header = headerV2(("198.51.100.9", 1234), ("127.0.0.1", 80))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as sock:
        sock.sendall(header + b"request")  # header and data in one segment
        sock.shutdown(socket.SHUT_WR)
        assert readToEnd(sock) == b"got:request"
    assert "client=198.51.100.9:1234" in proxy.waitFor(r"event=close ")[0]
    assert server.errors == []


def test_a_connection_without_the_header_is_closed_and_others_go_on(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--accept-proxy")
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    with pytest.raises(OSError):  # a TLS client that skipped the balancer: no reply, closed
        clientContext(pems.ca).wrap_socket(raw, server_hostname="example.com")
    raw.close()
    [line] = proxy.waitFor(r"by=proxy_header_failed")
    assert 'error="no PROXY protocol header' in line and "conn=" in line
    assert server.accepted == 0  # no backend connection for it
    with tlsAfter(V1, proxy.port, clientContext(pems.ca)) as sock:
        sock.sendall(b"still here")
        assert sock.recv(100) == b"still here"


def test_a_header_that_never_comes_times_out(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--accept-proxy",
                        "--handshake-timeout", "0.5")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as sock:
        sock.sendall(V1[:10])  # a slow-loris balancer, or not a balancer at all
        started = time.monotonic()
        with pytest.raises(ConnectionResetError):
            while sock.recv(100):
                pass
        assert time.monotonic() - started < TIMEOUT / 2
    assert "no complete PROXY header after 0.5 s" in proxy.waitFor(r"by=proxy_header_failed")[0]


def test_health_check_then_close(pems, start_proxy, backend):
    """A balancer's LOCAL health check: the connection's own address stays; the check closes."""
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--accept-proxy")
    local = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0, 0])
    with tlsAfter(local, proxy.port, clientContext(pems.ca)) as sock:
        ownPort = sock.getsockname()[1]
        sock.sendall(b"ping")
        assert sock.recv(100) == b"ping"
    assert f"client=127.0.0.1:{ownPort}" in proxy.waitFor(r"event=close ")[0]


def test_toml_key_and_its_check(tmp_path, pems):
    config = tmp_path / "proxy.toml"
    config.write_text(f'[[listener]]\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:9"\n'
                      f'cert = "{pems.cert}"\nkey = "{pems.key}"\naccept_proxy = "yes"\n')
    result = runProxy(["--config", str(config)])
    assert result.returncode == 2
    assert "accept_proxy must be true or false" in result.stderr


def test_v2_writer_roundtrip_sanity():
    """(The writer the tests use for v2 headers, read by the independent parser.)"""
    result = ProxyProtocolV2().unpack(headerV2(("198.51.100.9", 1234), ("127.0.0.1", 80)))
    assert result.source == (ipaddress.ip_address("198.51.100.9"), 1234)


@pytest.mark.parametrize("mode", ["terminate", "originate"])  # TLS and plain (half-closeable) listeners
def test_closing_before_the_header(pems, start_proxy, backend, mode):
    """
    A connect-and-close (a balancer's TCP health check) is not a failure; a
    close in the middle of the header is.
    """
    server = backend(echo)
    args = (["--cert", pems.cert, "--key", pems.key] if mode == "terminate"
            else ["--mode", "originate", "--backend-ca", pems.ca, "--backend-name", "backend.example"])
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}", *args,
                        "--accept-proxy")
    socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT).close()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as sock:
        sock.sendall(V1[:20])
    [line] = proxy.waitFor(r"by=proxy_header_failed")
    assert 'error="connection closed inside the PROXY header"' in line
    time.sleep(0.2)  # (the health check came first: its line would be there by now)
    assert len(proxy.waitFor(r"event=close ", 0)) == 1
    assert server.accepted == 0


def test_connections_reading_their_header_count_towards_max_connections(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--accept-proxy", "--max-connections", "1")
    waiting = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    waiting.sendall(V1[:5])
    proxy.waitFor(r"event=max_connections")
    queued = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)  # in the backlog
    queued.sendall(V1)
    waiting.close()  # frees the slot (and is logged as a failed header)
    proxy.waitFor(r"by=proxy_header_failed")
    with clientContext(pems.ca).wrap_socket(queued, server_hostname="example.com") as sock:
        sock.sendall(b"served")
        assert sock.recv(100) == b"served"


def test_sigterm_does_not_wait_for_headers(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--accept-proxy", "--drain-timeout", "30")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as sock:
        sock.sendall(V1[:5])
        time.sleep(0.2)  # accepted, reading its header
        started = time.monotonic()
        assert proxy.terminate() == 0
        assert time.monotonic() - started < 10  # not the 30 s drain deadline


def test_sighup_turning_it_on_rebuilds_the_listener(pems, start_proxy, backend, tmp_path):
    """The header reader sits under TLS on the listening socket: a reload that turns it on rebuilds that."""
    server = backend(echo)
    config = tmp_path / "proxy.toml"
    listener = (f'[[listener]]\nname = "web"\nbackend = "127.0.0.1:{server.port}"\n'
                f'cert = "{pems.cert}"\nkey = "{pems.key}"\n')
    config.write_text(listener + 'listen = "127.0.0.1:0"\n')
    proxy = start_proxy("--config", config)
    port = proxy.ports["web"]
    config.write_text(listener + f'listen = "127.0.0.1:{port}"\naccept_proxy = true\n')
    proxy.process.send_signal(signal.SIGHUP)
    assert "added=web" in proxy.waitFor(r"event=reloaded")[0]  # a new socket, not an update
    with tlsAfter(V1, port, clientContext(pems.ca)) as sock:
        sock.sendall(b"after reload")
        assert sock.recv(100) == b"after reload"
    assert "client=203.0.113.7:40123" in proxy.waitFor(r"event=close ")[0]


# -- malformed address blocks: a clean failure, never an escaping exception (finding 4) --

SIGNATURE_V2 = b"\r\n\r\n\x00\r\nQUIT\n"
MALFORMED_V2 = [
    SIGNATURE_V2 + bytes([0x21, 0x11, 0, 4]) + b"\x7f\x00\x00\x01",  # TCP4 with 4 of its 12 address bytes
    SIGNATURE_V2 + bytes([0x21, 0x21, 0, 12]) + bytes(12),  # TCP6 with 12 of its 36
    SIGNATURE_V2 + bytes([0x21, 0x11, 0, 0]),  # TCP4, no address at all
    SIGNATURE_V2 + bytes([0x21, 0x31, 0, 10]) + bytes(10),  # AF_UNIX with 10 of its 216
]


@pytest.mark.parametrize("header", MALFORMED_V2)
def test_malformed_v2_address_blocks(header):
    with pytest.raises(ProxyHeaderError, match="invalid PROXY header"):
        splitHeader(header + b"\x16\x03\x01")


def test_malformed_v2_address_block_through_the_proxy(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--accept-proxy")
    for header in MALFORMED_V2[:2]:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as sock:
            sock.sendall(header)
            with pytest.raises(ConnectionResetError):  # aborted, no reply
                while sock.recv(100):
                    pass
    lines = proxy.waitFor(r"by=proxy_header_failed", 2)
    for line in lines:
        assert parseLogfmt(line)["error"].startswith("invalid PROXY header: error: ")  # struct.error
    assertNoTraceback(proxy.lines)
    assert server.accepted == 0
    with tlsAfter(V1, proxy.port, clientContext(pems.ca)) as sock:
        sock.sendall(b"still here")
        assert sock.recv(100) == b"still here"
