"""
BufferingTLSTransport's small-write aggregation with tlsfast: writes made
from inside dataReceived go out as soon as it returns, in one record, with
no reactor iteration; writes made elsewhere are still aggregated until the
factory's clock runs (or ~64 KB), as in stock Twisted.
"""

from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols import tls as stock_tls
from twisted.trial.unittest import SynchronousTestCase

import tlsfast
import tlsfast.twisted
from tests.twisted.tlshelpers import clientOptions, serverOptions


class Replier(Protocol):
    """Answers every chunk with three small writes."""

    def __init__(self):
        self.received = b""

    def dataReceived(self, data):
        self.received += data
        for part in (b"re", b"pl", b"y"):
            self.transport.write(part)


class Collector(Protocol):
    def __init__(self):
        self.received = b""

    def dataReceived(self, data):
        self.received += data


class AggregationTests(SynchronousTestCase):
    factoryClass = tlsfast.twisted.TLSMemoryBIOFactory

    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        self.clock = Clock()
        self.serverApp, self.clientApp = Replier(), Collector()
        self.server = self.make(serverOptions(), False, self.serverApp)
        self.client = self.make(clientOptions(), True, self.clientApp)
        self.pump()
        self.assertTrue(self.server._handshakeDone and self.client._handshakeDone)

    def make(self, options, isClient, app):
        factory = self.factoryClass(options, isClient, Factory.forProtocol(lambda: app), clock=self.clock)
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        return protocol

    def pump(self):
        for _ in range(10):
            moved = False
            for a, b in ((self.client, self.server), (self.server, self.client)):
                data = a.transport.value()
                a.transport.clear()
                if data:
                    moved = True
                    b.dataReceived(data)
            if not moved:
                return

    def test_replyFlushedWhenDataReceivedReturns(self):
        self.client.write(b"request")
        self.clock.advance(0)  # the client's own write is aggregated as usual
        request = self.client.transport.value()
        self.client.transport.clear()
        self.server.dataReceived(request)
        self.assertEqual(self.serverApp.received, b"request")
        # no clock.advance(): the reply is already on the wire, one record
        reply = self.server.transport.value()
        self.assertNotEqual(reply, b"")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.client.dataReceived(reply)
        self.assertEqual(self.clientApp.received, b"reply")
        # 5 bytes of plaintext in a single TLS 1.3 record: 5 + 5 + 1 + 16
        self.assertEqual(len(reply), 27)

    def test_writesOutsideDataReceivedWaitForTheClock(self):
        self.server.write(b"a")
        self.server.write(b"b")
        self.assertEqual(self.server.transport.value(), b"")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(0)
        self.client.dataReceived(self.server.transport.value())
        self.assertEqual(self.clientApp.received, b"ab")

    def test_largeWritesFlushAt64KB(self):
        self.server.write(b"x" * 40_000)
        self.assertEqual(self.server.transport.value(), b"")
        self.server.write(b"y" * 40_000)  # over the 64 KB threshold
        self.assertGreater(len(self.server.transport.value()), 80_000)

    def test_writeNowSendsAtOnceAfterWhatWasAggregated(self):
        """writeNow (a tlsfast extension, for relays): no reactor turn, and never overtakes."""
        self.server.write(b"first,")  # aggregated: waits for the clock
        self.server.writeNow(b"second")
        self.assertNotEqual(self.server.transport.value(), b"")  # both on the wire without the clock
        self.client.dataReceived(self.server.transport.value())
        self.assertEqual(self.clientApp.received, b"first,second")
        self.server.transport.clear()
        self.clock.advance(0)
        self.assertEqual(self.server.transport.value(), b"")  # nothing was left behind

    def test_writeNowAfterLoseConnectionIsDropped(self):
        self.server.loseConnection()
        self.server.writeNow(b"late")
        self.client.dataReceived(self.server.transport.value())
        self.assertEqual(self.clientApp.received, b"")


class StockAggregationTests(AggregationTests):
    """The reference: stock Twisted waits one reactor iteration for the reply."""

    factoryClass = stock_tls.TLSMemoryBIOFactory

    def test_replyFlushedWhenDataReceivedReturns(self):
        self.client.write(b"request")
        self.clock.advance(0)
        request = self.client.transport.value()
        self.client.transport.clear()
        self.server.dataReceived(request)
        self.assertEqual(self.server.transport.value(), b"")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(0)
        self.client.dataReceived(self.server.transport.value())
        self.assertEqual(self.clientApp.received, b"reply")

    def test_writeNowSendsAtOnceAfterWhatWasAggregated(self):
        self.assertFalse(hasattr(self.server, "writeNow"))  # ours only: the proxy falls back to write()

    def test_writeNowAfterLoseConnectionIsDropped(self):
        self.assertFalse(hasattr(self.server, "writeNow"))


class ProvidedInterfacesTests(SynchronousTestCase):
    """The wrapper provides exactly the interfaces stock Twisted's does."""

    def provided(self, factoryClass, connectWrapped):
        from zope.interface import directlyProvidedBy

        factory = factoryClass(serverOptions(), False, Factory.forProtocol(Protocol), clock=Clock())
        protocol = factory.protocol(factory, Protocol(), connectWrapped)
        protocol.makeConnection(StringTransport())
        return list(directlyProvidedBy(protocol))

    def test_sameAsStock(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        for connectWrapped in (True, False):
            stock = self.provided(stock_tls.TLSMemoryBIOFactory, connectWrapped)
            ours = self.provided(tlsfast.twisted.TLSMemoryBIOFactory, connectWrapped)
            self.assertEqual(ours, stock)
            self.assertTrue(stock)
