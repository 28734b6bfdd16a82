"""
Connection events for other layers (L{tlsfast._foreign.twistedtls}):
observers registered on tlsfast's TLS protocol hear of the handshake, of
C{loseConnection} and of the loss, in order, without any method patched on
the instance; stock Twisted's protocol gets the same events through
L{observeConnection}'s fallback.  L{engineOf} finds a connection's engine.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

import tlsfast
from tests.twisted.tlshelpers import clientOptions, serverOptions
from tlsfast._foreign import twistedtls
from tlsfast._foreign.twistedtls import TLSConnectionObserver, engineOf, observeConnection


class EventRecorder(TLSConnectionObserver):
    def __init__(self):
        self.events = []

    def tlsHandshakeCompleted(self, tlsProtocol):
        self.events.append(("handshake", tlsProtocol))

    def tlsClosing(self, tlsProtocol):
        self.events.append(("closing", tlsProtocol))

    def tlsConnectionLost(self, tlsProtocol, reason):
        self.events.append(("lost", tlsProtocol, reason.type))


class ObserverMixin:
    factoryClass: type
    protocolClass: type

    def setUp(self):
        if self.protocolClass is twistedtls.TLSMemoryBIOProtocol and not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        clock = Clock()
        self.client = self.make(clientOptions(), True, clock)
        self.server = self.make(serverOptions(), False, clock)

    def make(self, options, isClient, clock):
        factory = self.factoryClass(options, isClient, Factory.forProtocol(Protocol), clock=clock)
        protocol = self.protocolClass(factory, factory.wrappedFactory.buildProtocol(None))
        self.recorder = getattr(self, "recorder", None) or EventRecorder()
        if isClient:
            # Observed from before makeConnection, as the options layer does
            # (it registers while the Connection is created).
            observeConnection(protocol, self.recorder)
        protocol.makeConnection(StringTransport())
        return protocol

    def pump(self):
        while True:
            toServer, toClient = self.client.transport.value(), self.server.transport.value()
            self.client.transport.clear()
            self.server.transport.clear()
            if not toServer and not toClient:
                return
            if toServer:
                self.server.dataReceived(toServer)
            if toClient:
                self.client.dataReceived(toClient)

    def test_eventsInOrder(self):
        self.pump()
        self.assertEqual(self.recorder.events, [("handshake", self.client)])
        self.client.loseConnection()
        self.assertEqual(self.recorder.events[1:], [("closing", self.client)])
        self.client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.recorder.events[2:], [("lost", self.client, ConnectionDone)])


class StockObserverTests(ObserverMixin, SynchronousTestCase):
    """Stock Twisted: observeConnection wraps the methods on the instance."""

    factoryClass = twistedtls.StockTLSMemoryBIOFactory
    protocolClass = twistedtls.StockTLSMemoryBIOProtocol

    def test_engineOf(self):
        self.assertIsNone(engineOf(self.client))


class TlsfastObserverTests(ObserverMixin, SynchronousTestCase):
    """tlsfast: registered observers, nothing patched on the instance."""

    factoryClass = twistedtls.TLSMemoryBIOFactory
    protocolClass = twistedtls.TLSMemoryBIOProtocol

    def test_nothingPatchedOnTheInstance(self):
        for name in ("loseConnection", "connectionLost", "_checkHandshakeStatus"):
            self.assertNotIn(name, vars(self.client))
        self.assertEqual(self.client._observers, (self.recorder,))

    def test_engineOf(self):
        """The engine through the public getEngine(), also via a startTLS-style transport."""
        engine = self.client.getEngine()
        self.assertIsInstance(engine, tlsfast.TLSEngine)
        self.assertIs(engineOf(self.client), engine)

        class TCPTransport:
            protocol = self.client

        self.assertIs(engineOf(TCPTransport()), engine)
        self.assertIsNone(engineOf(object()))

    def test_stockRecordPathStillReportsTheHandshake(self):
        """With no engine bound (Twisted's record path), the handshake is still reported."""
        clock = Clock()
        self.recorder = EventRecorder()
        original = twistedtls.engineFor
        twistedtls.engineFor = lambda connection: None
        self.addCleanup(setattr, twistedtls, "engineFor", original)
        self.client = self.make(clientOptions(), True, clock)
        self.server = self.make(serverOptions(), False, clock)
        self.assertIsNone(self.client.getEngine())
        self.pump()
        self.assertEqual(self.recorder.events, [("handshake", self.client)])
