"""
TLS 1.3 session tickets from a Twisted drop-in server: with tlsfast, a
C{CertificateOptions} context that cannot resume (Twisted's default: no
session cache, stateful tickets) sends none, where stock Twisted sends
OpenSSL's 2; contexts that can resume keep theirs, and
C{install(sendUnresumableTickets=True)} restores stock behaviour.  Tickets
are counted by an independent client (CPython's ssl) as NewSessionTicket
messages.
"""

from __future__ import annotations

import ssl

import pytest
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

import tlsfast
import tlsfast.twisted
from tests.ticketclients import TicketCountingClient, twoConnections
from tests.twisted.tlshelpers import Echo, serverOptions
from tlsfast._foreign import ticketcontrol
from tlsfast.twisted import StockTLSMemoryBIOFactory, TLSMemoryBIOFactory, TLSMemoryBIOProtocol

pytestmark = pytest.mark.skipif(not tlsfast.ACCELERATED or ticketcontrol.ticketControl() is None,
                                reason="engine or ticket count control unavailable")


class _Connection(TicketCountingClient):
    """A stdlib-ssl client (in memory) to one server protocol of C{factory},
    over a StringTransport: handshake, one byte echoed (which reads the
    tickets), counting the NewSessionTicket messages."""

    def __init__(self, factory, context: ssl.SSLContext, session=None):
        super().__init__(context, session)
        self.clock = factory._clock
        self.server = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.server.makeConnection(self.transport)

    def _flush(self):
        self.server.dataReceived(self.outgoing.read())
        self.clock.advance(0)  # BufferingTLSTransport's aggregated writes
        self.incoming.write(self.transport.value())
        self.transport.clear()

    def exchange(self) -> _Connection:
        self.handshake()
        self.client.write(b"?")
        self._flush()
        assert self.client.read(1) == b"?"
        return self


def _twoConnections(factory):
    return twoConnections(lambda context, session: _Connection(factory, context, session))


def _factory(cls=TLSMemoryBIOFactory, options=None, **settings):
    return cls(options or serverOptions(**settings), False, Factory.forProtocol(Echo), clock=Clock())


def test_stockSendsTwoItCannotResume():
    """What tlsfast changes: stock Twisted's default options send 2 tickets per connection, never resumed."""
    first, second = _twoConnections(_factory(StockTLSMemoryBIOFactory))
    assert (first.tickets, second.tickets, second.client.session_reused) == (2, 2, False)


def test_noneWhenTheContextCannotResume():
    """Every connection, the first of its context included, gets no ticket."""
    first, second = _twoConnections(_factory())
    assert (first.tickets, second.tickets, second.client.session_reused) == (0, 0, False)


@pytest.mark.parametrize("options", [{"enableSessions": True}, {"enableSessionTickets": True}],
                         ids=["sessionCache", "statelessTickets"])
def test_resumableContextsKeepTheirTickets(options):
    first, second = _twoConnections(_factory(**options))  # (CertificateOptions settings)
    assert first.tickets == 2
    assert second.client.session_reused is True


def test_explicitCountIsKept():
    """A count set on the context (here 1) is the application's choice."""
    options = serverOptions()
    ticketcontrol.ticketControl().setCount(options.getContext(), 1)
    first, second = _twoConnections(_factory(options=options))
    assert (first.tickets, second.tickets) == (1, 1)


def test_installCanKeepStockTickets(monkeypatch):
    monkeypatch.setattr(TLSMemoryBIOProtocol, "sendUnresumableTickets", False)
    assert tlsfast.twisted.install(sendUnresumableTickets=True)
    try:
        assert TLSMemoryBIOProtocol.sendUnresumableTickets is True
        first, second = _twoConnections(_factory())
        assert (first.tickets, second.tickets) == (2, 2)
    finally:
        tlsfast.twisted.uninstall()
    assert TLSMemoryBIOProtocol.sendUnresumableTickets is False
