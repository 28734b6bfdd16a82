"""
ALPN selection of ServerOptions (RFC 7301): server preference, no ALPN when
none is configured, and alert 120 no_application_protocol -- not 80
internal_error -- when a client's offer does not overlap.  The client is
CPython's ssl (OpenSSL 3), the server the engine on ServerOptions.
"""

from __future__ import annotations

import ssl

import pytest
from OpenSSL import SSL

from tests import pki
from tlsfast import TLSEngine
from tlsfast.options import NoApplicationProtocol
from tlsfast.options._alpn import selectProtocol


def _handshake(serverOptions, offered):
    """A stdlib client offering ``offered``; returns (its ALPN, the server's error)."""
    connection = SSL.Connection(serverOptions.getContext(), None)
    connection.set_accept_state()
    server = TLSEngine(connection)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=pki.certificate_authority().cert_pem.decode())
    context.set_alpn_protocols(offered)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="example.com")
    serverError = None
    for _ in range(10):
        try:
            client.do_handshake()
            return client.selected_alpn_protocol(), serverError
        except ssl.SSLWantReadError:
            pass
        try:
            server.receive(outgoing.read())
        except SSL.Error as error:
            serverError = error
        incoming.write(server.outgoing())
    raise AssertionError("handshake did not finish")


@pytest.mark.usefixtures("engineRequired")
def test_serverPreferenceWins(server):
    protocol, error = _handshake(server(acceptableProtocols=[b"h2", b"http/1.1"]), ["http/1.1", "h2"])
    assert (protocol, error) == ("h2", None)


@pytest.mark.usefixtures("engineRequired")
def test_unconfiguredServerAcceptsALPNClients(server):
    protocol, error = _handshake(server(), ["h2"])
    assert (protocol, error) == (None, None)


@pytest.mark.usefixtures("engineRequired")
def test_noOverlapSendsAlert120(server):
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol") as raised:
        _handshake(server(acceptableProtocols=[b"http/1.1"]), ["h2", "spdy/3"])
    assert "INTERNAL_ERROR" not in str(raised.value).upper()


@pytest.mark.usefixtures("engineRequired")
def test_noOverlapServerError(server):
    options = server(acceptableProtocols=[b"http/1.1"])
    connection = SSL.Connection(options.getContext(), None)
    connection.set_accept_state()
    engine = TLSEngine(connection)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=pki.certificate_authority().cert_pem.decode())
    context.set_alpn_protocols(["h2"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="example.com")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    with pytest.raises(NoApplicationProtocol) as raised:
        engine.receive(outgoing.read())
    error = raised.value
    assert isinstance(error, SSL.Error)
    assert error.args[0][-1][2] == "no application protocol"
    assert (error.offered, error.acceptable) == ([b"h2"], [b"http/1.1"])
    assert "offered [b'h2']" in str(error)


def test_selectProtocol():
    assert selectProtocol([b"a", b"b"], [b"b", b"a"]) == b"a"
    assert selectProtocol([], [b"a"]) is SSL.NO_OVERLAPPING_PROTOCOLS
    with pytest.raises(NoApplicationProtocol):
        selectProtocol([b"a"], [b"b"])
    with pytest.raises(NoApplicationProtocol):
        selectProtocol([b"a"], [])
