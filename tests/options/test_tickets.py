"""
TLS 1.3 session tickets sent by L{ServerOptions}: how many reach a client
(counted by an independent client, CPython's ssl, as NewSessionTicket
messages) and whether it can resume with them.
"""

from __future__ import annotations

import ssl

import pytest
from OpenSSL import SSL

from tests import pki
from tests.ticketclients import TicketCountingClient, twoConnections
from tlsfast import TLSEngine
from tlsfast._foreign import ticketcontrol as _tickets
from tlsfast.options import ConfigurationError, ServerOptions, _server


class _StdlibClient(TicketCountingClient):
    """One stdlib-ssl client connection to a L{ServerOptions} server, in
    memory, counting the NewSessionTicket messages it receives."""

    def __init__(self, serverOptions, context, session=None):
        super().__init__(context, session)
        self.server = TLSEngine(serverOptions.newConnection())

    def _flush(self):
        self.server.receive(self.outgoing.read())
        self.incoming.write(self.server.outgoing())

    def exchange(self):
        """Handshake, one byte each way (so the tickets are read), clean close."""
        self.handshake()
        self._flush()
        self.client.write(b"?")
        self._flush()
        self.incoming.write(self.server.send(b"!") + self.server.outgoing())
        assert self.client.read(1) == b"!"
        self.server.shutdown()
        self.incoming.write(self.server.outgoing())
        self.client.unwrap()
        try:
            self.server.receive(self.outgoing.read())
        except SSL.ZeroReturnError:
            pass
        return self


def _twoConnections(serverOptions, version="1.3"):
    """Two connections from one client context, the second offering the
    first one's session."""
    return twoConnections(lambda context, session: _StdlibClient(serverOptions, context, session), version)


@pytest.fixture
def server():
    identity = pki.leaf("ecdsa", names=("example.com",))
    return lambda **kw: ServerOptions(identity.certificate, identity.key, **kw)


@pytest.fixture
def ticketCountSettable():
    if _tickets.ticketControl() is None:
        pytest.skip(f"TLS 1.3 ticket count cannot be set: {_tickets.unavailableReason()}")


class TestTicketCount:
    def test_defaultResumable(self, server):
        """By default: OpenSSL's 2 tickets, and the next connection resumes."""
        first, second = _twoConnections(server())
        assert (first.tickets, first.client.session_reused) == (2, False)
        assert second.client.session_reused is True

    def test_statefulResumable(self, server):
        """No stateless tickets but the cache: TLS 1.3 stateful tickets, resumable."""
        first, second = _twoConnections(server(sessionTickets=False))
        assert first.tickets == 2
        assert second.client.session_reused is True

    def test_noneWhenNothingCanResume(self, server, ticketCountSettable):
        """Neither tickets nor the cache: no ticket at all (stock sends 2)."""
        serverOptions = server(sessionTickets=False, sessionCache=False)
        first, second = _twoConnections(serverOptions)
        assert (serverOptions.ticketsPerHandshake, first.tickets, second.tickets) == (0, 0, 0)
        assert second.client.session_reused is False

    @pytest.mark.parametrize("count", [1, 3])
    def test_configured(self, server, ticketCountSettable, count):
        """sessionTickets=N: N tickets, and resumption works."""
        first, second = _twoConnections(server(sessionTickets=count))
        assert first.tickets == count
        assert second.client.session_reused is True

    def test_zeroTickets(self, server, ticketCountSettable):
        """sessionTickets=0: no TLS 1.3 ticket; TLS 1.2 resumes by session ID."""
        first, second = _twoConnections(server(sessionTickets=0))
        assert (first.tickets, second.client.session_reused) == (0, False)
        first, second = _twoConnections(server(sessionTickets=0), version="1.2")
        assert first.tickets == 0
        assert second.client.session_reused is True

    def test_serverNameContexts(self, server, ticketCountSettable):
        """Every SNI context sends the configured count."""
        other = pki.leaf("ecdsa", names=("other.example",))
        serverOptions = server(sessionTickets=1, serverNames={"other.example": (other.certificate, other.key)})
        control = _tickets.ticketControl()
        assert control is not None
        assert [control.count(c) for c in serverOptions._allContexts()] == [1, 1]

    @pytest.mark.parametrize("value", [-1, 1.5, "2", None])
    def test_badCount(self, server, value):
        with pytest.raises(ConfigurationError, match="sessionTickets must be"):
            server(sessionTickets=value)

    def test_explicitCountWithoutControl(self, server, monkeypatch):
        """Where the count cannot be set, an explicit other count is refused
        and the defaults still build."""
        monkeypatch.setattr(_server, "ticketControl", lambda: None)
        monkeypatch.setattr(_server, "unavailableReason", lambda: "no symbol table")
        with pytest.raises(ConfigurationError, match="no symbol table"):
            server(sessionTickets=1)
        assert server(sessionTickets=2).ticketsPerHandshake == 2
        assert server(sessionTickets=False, sessionCache=False).ticketsPerHandshake == 0


class TestTicketControl:
    def test_availableOnLinux(self):
        """cryptography's wheels keep a symbol table on Linux: the control is found."""
        import sys

        if not sys.platform.startswith("linux"):
            pytest.skip("looked up on Linux only")
        assert _tickets.ticketControl() is not None, _tickets.unavailableReason()

    def test_notELF(self, tmp_path):
        path = tmp_path / "not-elf.so"
        path.write_bytes(b"MZ" + b"\0" * 100)
        with pytest.raises(_tickets.TicketControlUnavailable, match="not a 64-bit"):
            _tickets._localFunctions(str(path), {"SSL_CTX_set_num_tickets"})

    def test_setsAndReads(self, ticketCountSettable):
        control = _tickets.ticketControl()
        assert control is not None
        context = SSL.Context(SSL.TLS_METHOD)
        assert control.count(context) == _tickets.OPENSSL_DEFAULT_TICKETS
        control.setCount(context, 5)
        assert control.count(context) == 5


class TestTicketKeys:
    def test_sharedKeysResumeAcrossServers(self, server, ticketCountSettable):
        """Two servers given the same keys (two proxy workers) resume each
        other's tickets; a server with its own key does not."""
        import os

        keys = os.urandom(80)
        first, second, stranger = server(ticketKeys=keys), server(ticketKeys=keys), server()
        context = ssl.create_default_context(cadata=pki.certificate_authority().cert_pem.decode())
        issued = _StdlibClient(first, context).exchange()
        again = _StdlibClient(second, context, session=issued.client.session).exchange()
        assert again.client.session_reused is True
        elsewhere = _StdlibClient(stranger, context, session=issued.client.session).exchange()
        assert elsewhere.client.session_reused is False

    def test_keysReadBack(self, server, ticketCountSettable):
        keys = bytes(range(80))
        serverOptions = server(ticketKeys=keys, serverNames={})
        control = _tickets.ticketControl()
        assert control is not None
        assert control.ticketKeys(serverOptions.getContext()) == keys

    @pytest.mark.parametrize("keys", [b"short", "x" * 80, bytes(81)])
    def test_badKeys(self, server, keys):
        with pytest.raises(ConfigurationError, match="ticketKeys must be 80 bytes"):
            server(ticketKeys=keys)

    @pytest.mark.parametrize("tickets", [False, 0])
    def test_keysNeedTickets(self, server, tickets):
        with pytest.raises(ConfigurationError, match="need session tickets"):
            server(ticketKeys=bytes(80), sessionTickets=tickets)

    def test_keysWithoutControl(self, server, monkeypatch):
        monkeypatch.setattr(_server, "ticketControl", lambda: None)
        monkeypatch.setattr(_server, "unavailableReason", lambda: "no symbol table")
        with pytest.raises(ConfigurationError, match="no symbol table"):
            server(ticketKeys=bytes(80))


def test_noControlWithoutTheSeam(server, monkeypatch):
    """When the seam cannot reach a Context's SSL_CTX, the defaults still
    build and an explicit count says why it cannot be had."""
    from tlsfast._foreign import pyopenssl

    monkeypatch.setattr(pyopenssl.SURFACE, "problems", ["pyOpenSSL internals: Context has no _context"])
    assert _tickets.ticketControl() is None
    assert server().ticketsPerHandshake == 2
    with pytest.raises(ConfigurationError, match="Context has no _context"):
        server(sessionTickets=1)
