"""
The established connection's record loop (tlsfast._engine.RecordLoop).

Over real loopback TCP with tlsfast installed, the loop reads the socket,
decrypts, delivers, and sends the application's replies when its
dataReceived returns, straight to the socket while Twisted's write queue is
empty: no transport.write(), callLater or extra reactor turn.  What it
changes is when bytes are sent, never which or in what order: the
behaviour tests run against stock Twisted too.  In memory, RecordLoop keeps
Twisted's small-write aggregator contract.
"""

from __future__ import annotations

import hashlib
import os

from OpenSSL import SSL
from twisted.internet import tcp
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.protocols import tls as stock_tls
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

import tlsfast
import tlsfast.twisted
from tests.twisted.test_loopback import LoopbackMixin, RawClient, reactor
from tests.twisted.tlshelpers import Echo, Recorder, parametrize

MiB = 1024 * 1024


class ReplyThenClose(Recorder):
    """Replies to the first chunk in three writes, then closes."""

    def dataReceived(self, data):
        Recorder.dataReceived(self, data)
        for part in (b"re", b"pl", b"y" * 100_000):
            self.transport.write(part)
        self.transport.loseConnection()


class ReplyThenAbort(Recorder):
    """Writes a reply, then aborts the connection, from dataReceived."""

    def dataReceived(self, data):
        Recorder.dataReceived(self, data)
        self.transport.write(b"never sent")
        self.transport.abortConnection()


class BlockFirst(Echo):
    """Writes a large block when the handshake completes, then echoes."""

    BLOCK = os.urandom(8 * MiB)

    def handshakeCompleted(self):
        Echo.handshakeCompleted(self)
        self.transport.write(self.BLOCK)


class CountTCPWrites(Echo):
    """Echoes, and counts the calls of its TCP transport's write() (sizes in C{tcpWrites})."""

    def connectionMade(self):
        Echo.connectionMade(self)
        self.tcpWrites = []
        tcpTransport = self.transport.transport
        original = tcpTransport.write
        tcpTransport.write = lambda data: (self.tcpWrites.append(len(data)), original(data))[1]


class LoopBehaviourMixin(LoopbackMixin):
    """What the application sees: the same with and without the loop."""

    async def test_requestsAndReplies(self):
        """Many small round trips are each echoed intact, in order."""
        server, portNumber = self.listen()
        client = await self.connect(portNumber)
        expected = b""
        for i in range(200):
            message = b"%d:" % i + os.urandom(64)
            expected += message
            client.transport.write(message)
            await client.waitFor(len(expected))
        self.assertEqual(client.received, expected)
        client.transport.loseConnection()
        await self.closed(client, server.instances[0])

    async def test_queuedBytesGoFirst(self):
        """
        A reply made while the transport still holds a large unsent block
        follows that block: nothing overtakes Twisted's write queue.
        """
        server, portNumber = self.listen(protocol=BlockFirst)
        client = await self.connect(portNumber)
        await client.handshake
        client.transport.write(b"ping")
        block = BlockFirst.BLOCK
        await client.waitFor(len(block) + 4)
        self.assertEqual(hashlib.sha256(client.received).digest(),
                         hashlib.sha256(block + b"ping").digest())
        client.transport.loseConnection()
        await self.closed(client, server.instances[0])

    async def test_replyThenLoseConnection(self):
        """Replies written before loseConnection() in dataReceived arrive in full, then a clean close."""
        server, portNumber = self.listen(protocol=ReplyThenClose)
        client = await self.connect(portNumber)
        client.transport.write(b"request")
        await self.closed(client, server.instances[0])
        self.assertEqual(client.received, b"repl" + b"y" * 100_000)
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)

    async def test_replyThenAbort(self):
        """A reply written just before abortConnection() is dropped, as Twisted drops it."""
        server, portNumber = self.listen(protocol=ReplyThenAbort)
        client = await self.connect(portNumber)
        client.transport.write(b"request")
        await self.closed(client, server.instances[0])
        self.assertEqual(client.received, b"")
        self.assertFalse(client.reason.check(ConnectionDone), client.reason)

    async def test_garbageAfterHandshake(self):
        """
        Garbage under an established connection fails it with an
        OpenSSL.SSL.Error; what came before it was delivered.
        """
        server, portNumber = self.listen(protocol=Recorder)
        client = await self.connect(portNumber)
        client.transport.write(b"complete")
        serverSide = await server.connected
        await serverSide.waitFor(8)
        client.transport.transport.write(b"\x17\x03\x03\x00\x20" + b"\x01" * 32)
        await self.closed(client, serverSide)
        self.assertEqual(serverSide.received, b"complete")
        self.assertTrue(serverSide.reason.check(SSL.Error), serverSide.reason)


parametrize(LoopBehaviourMixin, globals(), "LoopBehaviourTests")


def _serverTCPTransport(server):
    return server.instances[0].transport.transport


class SocketLoopTests(LoopbackMixin):
    """With tlsfast installed: the loop really is the one reading and writing."""

    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        self.assertTrue(tlsfast.twisted.install())
        self.addCleanup(tlsfast.twisted.uninstall)

    async def test_loopReadsTheSocket(self):
        """The server's TCP transport reads through its TLS protocol's RecordLoop."""
        server, portNumber = self.listen()
        client = await self.connect(portNumber)
        await client.handshake
        transport = _serverTCPTransport(server)
        self.assertIsInstance(transport, tcp.Server)
        tlsProtocol = server.instances[0].transport
        self.assertIs(transport.doRead.__self__, tlsProtocol._loop)
        client.transport.loseConnection()
        await self.closed(client, server.instances[0])

    async def test_repliesSkipTheTransportQueue(self):
        """
        Once established, every echo reply goes out through the loop's own
        send(): Twisted's transport.write() is never called for them.
        """
        server, portNumber = self.listen()
        client = await self.connect(portNumber)
        client.transport.write(b"warm-up")
        await client.waitFor(7)
        await deferLater(reactor(), 0.05, lambda: None)  # the handshake's queue drains
        transport = _serverTCPTransport(server)
        writes = []
        original = transport.write
        transport.write = lambda data: (writes.append(len(data)), original(data))[1]
        total = 7
        for _ in range(50):
            client.transport.write(b"x" * 64)
            total += 64
            await client.waitFor(total)
        self.assertEqual(writes, [])
        client.transport.loseConnection()
        await self.closed(client, server.instances[0])

    async def test_handshakeAndCloseSkipTheTransportQueue(self):
        """
        The server's handshake flight, its echo replies and its close_notify
        all go out through the loop's send(): the TCP transport's queue is
        never used on an uncongested connection.
        """
        server, portNumber = self.listen(protocol=CountTCPWrites)
        client = await self.connect(portNumber)
        client.transport.write(b"ping")
        await client.waitFor(4)
        serverSide = server.instances[0]
        serverSide.transport.loseConnection()
        await self.closed(client, serverSide)
        self.assertEqual(client.received, b"ping")
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        self.assertEqual(serverSide.tcpWrites, [])

    async def test_notAttachedToAPlainTCPConnection(self):
        """A plain TCP connection keeps Twisted's doRead."""
        server, portNumber = self.listen()
        endpoint = TCP4ClientEndpoint(reactor(), "127.0.0.1", portNumber)
        raw = await endpoint.connect(Factory.forProtocol(RawClient))
        self.assertNotIn("doRead", raw.transport.__dict__)
        raw.transport.loseConnection()
        await raw.lost
        await self.closed(server.instances[0])


from twisted.trial.unittest import TestCase  # noqa: E402  (after the mixins it runs)


class SocketLoop(SocketLoopTests, TestCase):
    pass


class Sink:
    def __init__(self):
        self.written = []

    def __call__(self, data):
        self.written.append(data)


class AggregatorContractTests(SynchronousTestCase):
    """RecordLoop as Twisted's _AggregateSmallWrites, without a connection."""

    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        from tlsfast._engine import RecordLoop

        self.clock = Clock()
        self.sink = Sink()
        self.general = Sink()
        self.owner = object()
        self.loop = RecordLoop(self.owner, self.sink, self.clock, stock_tls._AggregateSmallWrites.MAX_BUFFER_SIZE,
                               True, lambda owner, data: self.general((owner, data)))

    def test_writesJoinedAtTheNextTurn(self):
        self.loop.write(b"a")
        self.loop.write(bytearray(b"b"))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(self.sink.written, [])
        self.clock.advance(0)
        self.assertEqual(self.sink.written, [b"ab"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bytearrayCopied(self):
        data = bytearray(b"abc")
        self.loop.write(data)
        data[:] = b"xyz"
        self.loop.flush()
        self.assertEqual(self.sink.written, [b"abc"])

    def test_textRefused(self):
        self.assertRaises(TypeError, self.loop.write, "text")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_flushPastMaxBuffer(self):
        self.loop.write(b"x" * 63_000)
        self.assertEqual(self.sink.written, [])
        self.loop.write(b"y" * 2_000)
        self.assertEqual(self.sink.written, [b"x" * 63_000 + b"y" * 2_000])

    def test_closeFlushesAndCancels(self):
        self.loop.write(b"last")
        self.loop.close()
        self.assertEqual(self.sink.written, [b"last"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_flushWithNothingBuffered(self):
        self.loop.flush()
        self.loop.close()
        self.assertEqual(self.sink.written, [])

    def test_unboundReceiveGoesToTheGeneralPath(self):
        """Unbound (no engine), ciphertext goes to the protocol's general dataReceived."""
        self.loop.data_received(b"\x16\x03\x01")
        self.loop.data_received(bytearray(b"\x16"))
        self.assertEqual(self.general.written, [(self.owner, b"\x16\x03\x01"), (self.owner, bytearray(b"\x16"))])

    def test_unbufferedWritesGoThroughWhenUnbound(self):
        """Not aggregating and unbound: each write goes to the general write at once, nothing is scheduled."""
        from tlsfast._engine import RecordLoop

        loop = RecordLoop(self.owner, self.sink, None, 0, False, self.general)
        loop.write(b"a")
        loop.write(b"b")
        self.assertEqual(self.sink.written, [b"a", b"b"])

    def test_doReadWithoutSocket(self):
        self.assertIsNone(self.loop.doRead())

    def test_useSocketChecksItsArguments(self):
        for fd, size in ((-1, 1024), (3, 0)):
            self.assertRaises(ValueError, self.loop.use_socket, object(), fd, size, (), (), "b", "o",
                              None, None)

    def test_misuseRaises(self):
        """Wrong types and an unbound loop raise; nothing reaches OpenSSL."""
        self.assertRaises(TypeError, self.loop.bind, object(), None, None, None, None)
        self.assertRaises(AttributeError, self.loop.deliver, b"plaintext")

    def test_releasedLoopDropsWrites(self):
        """After release() (the connection is gone) a stale write or read goes nowhere, without error."""
        self.loop.release()
        self.loop.write(b"late")
        self.loop.data_received(b"late")
        self.assertEqual((self.sink.written, self.general.written), ([], []))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class GarbageIntoTheLoopTests(SynchronousTestCase):
    """
    Random and mutated records fed to an established connection's loop (in
    memory, both kinds of protocol): the connection ends with an
    OpenSSL.SSL.Error or, for a valid-looking partial record, waits; nothing
    raises out of dataReceived, and a fresh connection is unaffected.
    (tools/asan.sh runs this file under AddressSanitizer.)
    """

    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")

    def pair(self, protocolClass):
        from twisted.internet.testing import StringTransport

        from tests.twisted.tlshelpers import clientOptions, serverOptions

        clock = Clock()
        apps = Recorder(), Recorder()
        protocols = []
        for options, isClient, app in ((serverOptions(), False, apps[0]), (clientOptions(), True, apps[1])):
            factory = tlsfast.twisted.TLSMemoryBIOFactory(options, isClient, Factory.forProtocol(Protocol),
                                                          clock=clock)
            protocol = protocolClass(factory, app)
            protocol.makeConnection(StringTransport())
            protocols.append(protocol)
        server, client = protocols
        for _ in range(10):
            for a, b in ((client, server), (server, client)):
                data = a.transport.value()
                a.transport.clear()
                if data:
                    b.dataReceived(data)
        self.assertTrue(server._handshakeDone and client._handshakeDone)
        self.assertIsNotNone(server.getRecordLoop())
        return server, client, apps[0]

    def test_garbage(self):
        import random

        rng = random.Random(1234)
        record, failed = None, 0
        for i in range(int(os.environ.get("TLSFAST_FUZZ_EXAMPLES", "150"))):
            protocolClass = (tlsfast.twisted.TLSMemoryBIOProtocol, tlsfast.twisted.BufferingTLSTransport)[i % 2]
            server, client, serverApp = self.pair(protocolClass)
            client.write(b"hello")
            if hasattr(client, "_aggregator"):
                client._aggregator.flush()
            record = client.transport.value()
            client.transport.clear()
            kind = i % 3
            if kind == 0:
                garbage = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
            elif kind == 1:  # a real record with one byte flipped
                garbage = bytearray(record)
                garbage[rng.randrange(len(garbage))] ^= 1 << rng.randrange(8)
                garbage = bytes(garbage)
            else:  # a real record, then random bytes
                garbage = record + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
            server.dataReceived(garbage)  # must not raise
            server.connectionLost(Failure(ConnectionDone()))
            # The TLS error if the garbage was one; else the end of the transport:
            # clean, or not (a partial record was pending).
            self.assertTrue(serverApp.reason.check(SSL.Error, ConnectionDone, ConnectionLost),
                            (garbage, serverApp.reason))
            failed += bool(serverApp.reason.check(SSL.Error))
        self.assertIsNotNone(record)
        self.assertGreater(failed, 0)  # the garbage did reach OpenSSL through the loop


class AttributeReadsTests(SynchronousTestCase):
    """
    The loop reads the protocol's attributes generically (without
    ProtocolWrapper's __getattr__ hook) only while the protocol's class
    keeps object's __getattribute__: a class with its own still sees every
    read of the established state.
    """

    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")

    def test_ownGetattributeSeesTheLoopsReads(self):
        reads = []

        class Counting(tlsfast.twisted.TLSMemoryBIOProtocol):
            def __getattribute__(self, name):
                if name == "_established":
                    reads.append(name)
                return super().__getattribute__(name)

        server, client, serverApp = GarbageIntoTheLoopTests.pair(self, Counting)
        del reads[:]
        client.write(b"hello")
        server.dataReceived(client.transport.value())
        self.assertEqual(serverApp.chunks, [b"hello"])
        # the write's check, the receive's and the one after decrypting
        self.assertGreaterEqual(len(reads), 3)

    def test_plainClassDeliversAndReplies(self):
        server, client, serverApp = GarbageIntoTheLoopTests.pair(self, tlsfast.twisted.TLSMemoryBIOProtocol)
        client.write(b"ping")
        server.dataReceived(client.transport.value())
        self.assertEqual(serverApp.chunks, [b"ping"])
