"""
install() fixes Twisted's ALPN server callback: a server configured without
ALPN accepts clients that offer it (stock Twisted rejects them with an
internal_error alert), while a server with ALPN protocols and no overlap
still fails the handshake.  The client is CPython's ssl (as curl would be).
"""

from __future__ import annotations

import ssl

import pytest
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.protocols import tls as twisted_tls

import tlsfast.twisted
from tests import pki
from tests.twisted.tlshelpers import serverOptions


class _Recorder(Protocol):
    lost = None

    def connectionLost(self, reason):
        self.lost = reason


def _handshake(offered, configured):
    """Run a stdlib client offering ``offered`` against a Twisted server."""
    options = serverOptions(acceptableProtocols=configured)  # context built now
    app = _Recorder()
    factory = twisted_tls.TLSMemoryBIOFactory(options, False, Factory.forProtocol(lambda: app))
    server = factory.buildProtocol(None)
    transport = StringTransport()
    server.makeConnection(transport)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=pki.certificate_authority().cert_pem.decode())
    context.set_alpn_protocols(offered)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="example.com")
    for _ in range(10):
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        server.dataReceived(outgoing.read())
        reply = transport.value()
        transport.clear()
        if not reply:
            break
        incoming.write(reply)
    return client.selected_alpn_protocol(), server


@pytest.fixture
def installed():
    assert tlsfast.twisted.install()
    yield
    tlsfast.twisted.uninstall()


def test_stock_twisted_rejects_alpn_clients_when_unconfigured():
    with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_INTERNAL_ERROR|internal error"):
        _handshake(["h2", "http/1.1"], None)


def test_installed_accepts_alpn_clients_when_unconfigured(installed):
    protocol, server = _handshake(["h2", "http/1.1"], None)
    assert protocol is None
    assert server.negotiatedProtocol is None
    assert isinstance(server, tlsfast.twisted.TLSMemoryBIOProtocol)


def test_installed_still_negotiates(installed):
    protocol, server = _handshake(["h2", "http/1.1"], [b"http/1.1"])
    assert protocol == "http/1.1"
    assert server.negotiatedProtocol == b"http/1.1"


def test_installed_still_fails_without_overlap(installed):
    with pytest.raises(ssl.SSLError):
        _handshake(["h2"], [b"http/1.1"])


def test_installed_no_overlap_sends_alert_120(installed):
    """RFC 7301 section 3.2: no_application_protocol, not internal_error."""
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol") as raised:
        _handshake(["h2", "spdy/3"], [b"http/1.1"])
    assert "INTERNAL_ERROR" not in str(raised.value).upper()


def test_uninstall_restores_stock_callback(installed):
    tlsfast.twisted.uninstall()
    try:
        with pytest.raises(ssl.SSLError):
            _handshake(["h2"], None)
    finally:
        tlsfast.twisted.install()
