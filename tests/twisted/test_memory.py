"""
The record path of the glue with in-memory transports, so that the tests
decide exactly which ciphertext arrives in which chunk.  Each test runs with
Twisted's classes and with tlsfast's (no install() needed: the factories are
used directly).
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

import tlsfast
import tlsfast.twisted
from tests.twisted.tlshelpers import clientOptions, serverOptions
from tlsfast.twisted import _protocol


@implementer(IHandshakeListener)
class EventLog(Protocol):
    """Records every event in order."""

    def __init__(self):
        self.events = []
        self.reason = None

    def handshakeCompleted(self):
        self.events.append(("handshake",))

    def dataReceived(self, data):
        self.events.append(("data", data))

    def connectionLost(self, reason):
        self.reason = reason
        self.events.append(("lost", reason.type))

    def received(self):
        return b"".join(event[1] for event in self.events if event[0] == "data")

    def deliveries(self):
        return sum(1 for event in self.events if event[0] == "data")


class MemoryMixin:
    """A client and a server TLS protocol over StringTransports."""

    # set by the two concrete classes below
    factoryClass = None
    protocolClass = None

    def setUp(self):
        if self.factoryClass is tlsfast.twisted.TLSMemoryBIOFactory and not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        clock = Clock()
        self.clientApp, self.serverApp = EventLog(), EventLog()
        self.client = self.make(clientOptions(), True, self.clientApp, clock)
        self.server = self.make(serverOptions(), False, self.serverApp, clock)

    def make(self, options, isClient, application, clock):
        factory = self.factoryClass(options, isClient, Factory.forProtocol(lambda: application),
                                    clock=clock)
        # The unbuffered protocol: every write goes straight to the record path.
        protocol = self.protocolClass(factory, factory.wrappedFactory.buildProtocol(None))
        protocol.makeConnection(StringTransport())
        return protocol

    def take(self, protocol):
        """All ciphertext C{protocol} has written so far."""
        data = protocol.transport.value()
        protocol.transport.clear()
        return data

    def pump(self):
        """Move ciphertext both ways, one chunk per direction, until quiet."""
        while True:
            toServer, toClient = self.take(self.client), self.take(self.server)
            if not toServer and not toClient:
                return
            if toServer:
                self.server.dataReceived(toServer)
            if toClient:
                self.client.dataReceived(toClient)

    def test_handshakeThenDataInOneChunk(self):
        """
        Data the client wrote before the handshake finished reaches the server
        in the same chunk as the client's Finished: the server application
        sees handshakeCompleted first, then the data.
        """
        self.client.write(b"early")
        self.server.dataReceived(self.take(self.client))   # ClientHello
        self.client.dataReceived(self.take(self.server))   # server flight
        self.assertEqual(self.clientApp.events, [("handshake",)])
        self.server.dataReceived(self.take(self.client))   # Finished + "early"
        self.assertEqual(self.serverApp.events, [("handshake",), ("data", b"early")])

    def test_dataThenCloseNotifyInOneChunk(self):
        """
        Data followed by close_notify in one chunk: the data is delivered,
        then TLS shuts down cleanly (close_notify answered, transport closed).
        """
        self.pump()
        self.client.write(b"last words")
        self.client.loseConnection()
        self.server.dataReceived(self.take(self.client))
        self.assertEqual(self.serverApp.received(), b"last words")
        self.assertTrue(self.server.transport.disconnecting)
        self.client.dataReceived(self.take(self.server))  # the answering close_notify
        self.assertTrue(self.client.transport.disconnecting)
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.serverApp.events[-1], ("lost", ConnectionDone))

    def test_replyAfterCloseNotifyInSameChunk(self):
        """
        The server application answers data that arrived in the same chunk as
        the client's close_notify: the answer still goes out (TLS half-close),
        and the server then closes cleanly.
        """
        self.pump()

        def reply(data):
            EventLog.dataReceived(self.serverApp, data)
            self.server.write(b"reply to " + data)

        self.serverApp.dataReceived = reply
        self.client.write(b"question")
        self.client.loseConnection()
        self.server.dataReceived(self.take(self.client))
        self.assertTrue(self.server.transport.disconnecting)
        self.client.dataReceived(self.take(self.server))
        self.assertEqual(self.clientApp.received(), b"reply to question")
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.serverApp.events[-1], ("lost", ConnectionDone))

    def test_dataThenGarbageInOneChunk(self):
        """
        Data followed by a forged record in one chunk: the data is delivered,
        then the connection is dropped with the OpenSSL.SSL.Error.
        """
        self.pump()
        self.client.write(b"good")
        forged = b"\x17\x03\x03\x00\x20" + b"\x01" * 32
        self.server.dataReceived(self.take(self.client) + forged)
        self.assertEqual(self.serverApp.received(), b"good")
        self.assertTrue(self.server.transport.disconnecting)
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(self.serverApp.reason.check(SSL.Error), self.serverApp.reason)

    def test_eofMidRecord(self):
        """
        The transport ends in the middle of a record: complete records before
        it are delivered and the application sees ConnectionLost.
        """
        from twisted.internet.error import ConnectionLost

        self.pump()
        self.client.write(b"whole")
        self.client.write(b"x" * 1000)
        ciphertext = self.take(self.client)
        self.server.dataReceived(ciphertext[:-10])
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.serverApp.received(), b"whole")
        self.assertTrue(self.serverApp.reason.check(ConnectionLost), self.serverApp.reason)

    def test_manyRecordsInOneChunk(self):
        """
        Many records in one chunk all arrive, in order.
        """
        self.pump()
        pieces = [bytes([i]) * (100 + i) for i in range(50)] + [b"z" * (200 * 1024)]
        for piece in pieces:
            self.client.write(piece)
        self.server.dataReceived(self.take(self.client))
        self.assertEqual(self.serverApp.received(), b"".join(pieces))


    def test_writeAfterLoseConnectionIsDropped(self):
        """
        After loseConnection (no producer) a write sends nothing: the peer
        sees the close and no data.
        """
        self.pump()
        self.client.loseConnection()
        closing = self.take(self.client)
        self.client.write(b"late")
        self.assertEqual(self.take(self.client), b"")
        self.server.dataReceived(closing)
        self.assertEqual(self.serverApp.received(), b"")

    def test_recordsAfterAbortAreNotDelivered(self):
        """
        Once the application aborted, records that arrive are not delivered.
        """
        self.pump()
        self.client.write(b"data")
        self.server.abortConnection()
        self.server.dataReceived(self.take(self.client))
        self.assertEqual(self.serverApp.received(), b"")


class StockMemoryTests(MemoryMixin, SynchronousTestCase):
    factoryClass = _protocol.StockTLSMemoryBIOFactory
    protocolClass = _protocol.StockTLSMemoryBIOProtocol


class TlsfastMemoryTests(MemoryMixin, SynchronousTestCase):
    factoryClass = tlsfast.twisted.TLSMemoryBIOFactory
    protocolClass = tlsfast.twisted.TLSMemoryBIOProtocol

    def test_oneDeliveryPerChunk(self):
        """
        tlsfast delivers all plaintext of one incoming chunk in one
        dataReceived call (stock Twisted: one call per 32 KiB read).
        """
        self.pump()
        self.assertIsNotNone(self.server._engine)
        pieces = [bytes([i]) * (100 + i) for i in range(50)] + [b"z" * (200 * 1024)]
        for piece in pieces:
            self.client.write(piece)
        self.server.dataReceived(self.take(self.client))
        self.assertEqual(self.serverApp.deliveries(), 1)
        self.assertEqual(self.serverApp.received(), b"".join(pieces))

    def test_establishedStateFollowsTwistedFlags(self):
        """
        The record path's hot state holds the engine exactly while the
        connection is established: not before the handshake, and no longer
        once Twisted's flags say it is closing, aborted or lost.
        """
        self.assertIsNone(self.client._established)
        self.pump()
        self.assertIs(self.client._established, self.client._engine)
        self.assertIs(self.server._established, self.server._engine)
        self.client.loseConnection()
        self.assertIsNone(self.client._established)
        self.assertTrue(self.client.disconnecting)
        self.server.abortConnection()
        self.assertIsNone(self.server._established)
        self.assertTrue(self.server._aborted)
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(self.server._lostTLSConnection)
        self.assertEqual(vars(self.server)["_lostTLSConnection"], True)  # where stock keeps it

    def test_connectionLostReleasesEngine(self):
        """
        After connectionLost the protocol drops the engine and the
        Connection (no protocol -> engine -> Connection -> protocol cycle).
        """
        self.pump()
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.server._engine)
        self.assertIsNone(self.server.getHandle())

    def test_replacedConnectionUsesTwistedPath(self):
        """
        Replacing _tlsConnection (as some of Twisted's tests do) detaches the
        engine; the replacement is then driven by Twisted's own code.
        """
        self.pump()
        connection = self.client._tlsConnection
        self.assertIs(self.client._engine.connection, connection)

        class Failing:
            def __getattr__(self, name):
                return getattr(connection, name)

            def send(self, data):
                raise SSL.Error([("SSL routines", "", "refused")])

        self.client._tlsConnection = Failing()
        self.assertIsNone(self.client._engine)
        self.client.write(b"hello")
        self.assertTrue(self.client.transport.disconnecting)
        self.client.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(self.clientApp.reason.check(SSL.Error))
