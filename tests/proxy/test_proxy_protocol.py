"""
The PROXY protocol header sent to backends, read back with an independent
parser (the ``proxy-protocol`` package).
"""

import ipaddress
import socket

import pytest
from proxyprotocol.v1 import ProxyProtocolV1
from proxyprotocol.v2 import ProxyProtocolV2

from tests import pki
from tests.proxy.helpers import (
    TIMEOUT,
    clientContext,
    connect,
    echo,
    readToEnd,
    serverContext,
)
from tests.proxy.hostile import assertNoTraceback, close, roundTrip, tlsClient
from tlsfast.proxy._proxyheader import ClientTLS, headerV1, headerV2


def test_v1_ipv4_and_ipv6():
    result = ProxyProtocolV1().unpack(headerV1(("192.0.2.1", 5555), ("198.51.100.2", 443)))
    assert result.source == (ipaddress.ip_address("192.0.2.1"), 5555)
    assert result.dest == (ipaddress.ip_address("198.51.100.2"), 443)
    result = ProxyProtocolV1().unpack(headerV1(("2001:db8::1", 1), ("2001:db8::2", 65535)))
    assert result.source == (ipaddress.ip_address("2001:db8::1"), 1)
    assert result.dest == (ipaddress.ip_address("2001:db8::2"), 65535)
    assert headerV1(("unix-socket", 0), ("127.0.0.1", 1)) == b"PROXY UNKNOWN\r\n"


def test_v2_addresses_and_tls_details():
    header = headerV2(("192.0.2.1", 5555), ("198.51.100.2", 443),
                      ClientTLS(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", serverName="example.com",
                                alpn=b"h2", certificateCN="alice"))
    result = ProxyProtocolV2().unpack(header)
    assert result.source == (ipaddress.ip_address("192.0.2.1"), 5555)
    assert result.dest == (ipaddress.ip_address("198.51.100.2"), 443)
    assert result.tlv.alpn == b"h2"
    assert result.tlv.authority == "example.com"
    assert result.tlv.ssl.has_ssl and result.tlv.ssl.has_cert_conn and result.tlv.ssl.verified
    assert (result.tlv.ssl.version, result.tlv.ssl.cn, result.tlv.ssl.cipher) == (
        "TLSv1.3", "alice", "TLS_AES_128_GCM_SHA256")


def test_v2_ipv6_without_tls():
    result = ProxyProtocolV2().unpack(headerV2(("::1", 40000), ("::1", 8443)))
    assert result.source == (ipaddress.ip_address("::1"), 40000)
    assert not result.tlv.ssl.has_ssl


def readHeader(sock, version):
    """Exactly the PROXY header's bytes (no more: TLS may follow)."""
    if version == "v1":
        data = b""
        while not data.endswith(b"\r\n"):
            data += sock.recv(1)
        return ProxyProtocolV1().unpack(data)
    data = b""
    while len(data) < 16:
        data += sock.recv(16 - len(data))
    length = int.from_bytes(data[14:16], "big")
    while len(data) < 16 + length:
        data += sock.recv(16 + length - len(data))
    return ProxyProtocolV2().unpack(data)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_terminate_sends_client_address(pems, start_proxy, backend, version, tmp_path):
    seen = []

    def handler(sock):
        seen.append(readHeader(sock, version))
        sock.sendall(b"echo:" + sock.recv(100))

    server = backend(handler)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--alpn", "http/1.1",
                        "--client-ca", pems.ca, "--proxy-protocol", version)
    alice = pki.leaf("ecdsa", names=("alice",), client=True)
    files = pki.write_pems(str(tmp_path), {"c": alice.cert_pem, "k": alice.key_pem})
    context = clientContext(pems.ca, alpn=["http/1.1"])
    context.load_cert_chain(files["c"], files["k"])
    with connect(proxy.port, context) as sock:
        clientPort = sock.getsockname()[1]
        sock.sendall(b"data")
        assert readToEnd(sock) == b"echo:data"  # the header is not relayed to the client
    [result] = seen
    assert result.source == (ipaddress.ip_address("127.0.0.1"), clientPort)
    assert result.dest == (ipaddress.ip_address("127.0.0.1"), proxy.port)
    if version == "v2":
        assert result.tlv.alpn == b"http/1.1" and result.tlv.authority == "example.com"
        assert result.tlv.ssl.cn == "alice" and result.tlv.ssl.version == "TLSv1.3"


def test_header_precedes_the_backend_tls_handshake(pems, start_proxy, backend):
    """Re-encrypt: the header goes in clear on the TCP connection, then TLS (as nginx expects)."""
    seen = []
    context = serverContext(pems.backendCert, pems.backendKey)

    def handler(sock):
        seen.append(readHeader(sock, "v1"))
        with context.wrap_socket(sock, server_side=True) as tls:
            tls.settimeout(TIMEOUT)
            tls.sendall(b"tls:" + tls.recv(100))
            tls.unwrap()

    server = backend(handler)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "reencrypt", "--cert", pems.cert, "--key", pems.key,
                        "--backend-ca", pems.ca, "--backend-name", "backend.example", "--proxy-protocol", "v1")
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        clientPort = sock.getsockname()[1]
        sock.sendall(b"x")
        assert readToEnd(sock) == b"tls:x"
    assert seen[0].source == (ipaddress.ip_address("127.0.0.1"), clientPort)
    assert server.errors == []


def test_originate_plain_client(start_proxy, backend, pems):
    seen = []
    context = serverContext(pems.backendCert, pems.backendKey)

    def handler(sock):
        seen.append(readHeader(sock, "v2"))
        with context.wrap_socket(sock, server_side=True) as tls:
            tls.sendall(b"ok:" + tls.recv(100))
            tls.unwrap()

    server = backend(handler)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "originate", "--backend-ca", pems.ca, "--backend-name", "backend.example",
                        "--proxy-protocol", "v2")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"y")
        assert readToEnd(sock) == b"ok:y"
        clientPort = sock.getsockname()[1]
    assert seen[0].source == (ipaddress.ip_address("127.0.0.1"), clientPort)
    assert not seen[0].tlv.ssl.has_ssl  # the client did not use TLS


# -- the AUTHORITY TLV is the SNI as the client sent it (finding 3) ----------------

def authority(header: bytes) -> bytes | None:
    """The raw value of the AUTHORITY TLV of a v2 header (TCP over IPv4)."""
    assert header[:12] == b"\r\n\r\n\x00\r\nQUIT\n" and header[13] == 0x11, header[:16]
    position, end = 16 + 12, 16 + int.from_bytes(header[14:16], "big")
    while position < end:
        kind, length = header[position], int.from_bytes(header[position + 1:position + 3], "big")
        if kind == 0x02:
            return header[position + 3:position + 3 + length]
        position += 3 + length
    return None


ODD_NAMES = [b"a..b", b"x" * 64 + b".example", "bücher.example".encode(), b"\xff\xfe.example", b"UPPER.Example."]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_v2_authority_is_the_sni_as_sent(name):
    # As ConnectionInfo holds it: text, bytes that are not ASCII as surrogates.
    text = name.decode("ascii", "surrogateescape")
    header = headerV2(("192.0.2.1", 1), ("192.0.2.2", 2), ClientTLS(version="TLSv1.3", serverName=text))
    assert authority(header) == name
    assert authority(headerV2(("192.0.2.1", 1), ("192.0.2.2", 2), ClientTLS(serverName=name))) == name


def test_v2_authority_from_any_text_never_raises():
    header = headerV2(("192.0.2.1", 1), ("192.0.2.2", 2), ClientTLS(serverName="\ud800lone"))
    assert authority(header) == b"?lone"


def test_odd_sni_through_the_proxy(pems, start_proxy, backend):
    headers = []

    def handler(sock):
        data = b""
        while len(data) < 16 or len(data) < 16 + int.from_bytes(data[14:16], "big"):
            data += sock.recv(65536)
        headers.append(data[:16 + int.from_bytes(data[14:16], "big")])
        rest = data[len(headers[-1]):]
        sock.sendall(rest)
        echo(sock)

    server = backend(handler)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--proxy-protocol", "v2")
    for name in ODD_NAMES:
        connection = tlsClient(proxy.port, name)
        assert roundTrip(connection, b"ping") == b"ping"
        close(connection)
    proxy.waitFor(r"event=close .*by=client", len(ODD_NAMES))
    assert [authority(header) for header in headers] == ODD_NAMES
    assertNoTraceback(proxy.lines)
