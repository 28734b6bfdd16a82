"""
Eager writes for every tlsfast Twisted user (L{tlsfast._foreign.twistedtcp}):
C{install(eagerWrites=True)} makes every TCP transport send at once when
nothing is queued (Twisted's queue stays empty after C{write()}), TLS runs
over them unchanged, and C{uninstall()} puts Twisted's transports back.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.endpoints import SSL4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

import tlsfast
import tlsfast.twisted
from tests.twisted.test_install import runPython
from tests.twisted.tlshelpers import Echo, Recorder, RecordingFactory, clientOptions, serverOptions
from tlsfast._foreign import twistedtcp


def reactor():
    from twisted.internet import reactor as globalReactor

    return globalReactor


class QueueProbe(Protocol):
    """Answers each chunk and records how much Twisted still had queued after write()."""

    def __init__(self):
        self.queuedAfterWrite = []

    def dataReceived(self, data):
        self.transport.write(data)
        transport = self.transport
        self.queuedAfterWrite.append(transport._tempDataLen + len(transport.dataBuffer) - transport.offset)
        self.factory.answered.callback(self)


class EagerWritesMixin:
    eager: bool

    def setUp(self):
        if self.eager:
            if not twistedtcp.SURFACE.usable:
                self.skipTest("this Twisted's tcp internals differ")
            self.assertTrue(twistedtcp.installEagerWrites())
            self.addCleanup(twistedtcp.uninstallEagerWrites)

    async def test_writeReachesTheKernelAtOnce(self):
        factory = Factory.forProtocol(QueueProbe)
        factory.answered = defer.Deferred()
        port = reactor().listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = RecordingFactory(Recorder)
        connector = reactor().connectTCP("127.0.0.1", port.getHost().port, client)
        self.addCleanup(connector.disconnect)
        recorder = await client.connected
        self.assertEqual(isinstance(recorder.transport, twistedtcp.EagerClient), self.eager)
        recorder.transport.write(b"ping")
        server = await factory.answered
        self.assertEqual(isinstance(server.transport, twistedtcp.EagerServer), self.eager)
        # Eager: sent before write() returned.  Twisted: queued for the next turn.
        self.assertEqual(server.queuedAfterWrite, [0] if self.eager else [4])
        await recorder.waitFor(4)
        self.assertEqual(recorder.received, b"ping")

    async def test_tlsOverThem(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        server = RecordingFactory(Echo)
        factory = tlsfast.twisted.TLSMemoryBIOFactory(serverOptions(), False, server)
        listening = reactor().listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        endpoint = SSL4ClientEndpoint(reactor(), "127.0.0.1", listening.getHost().port, clientOptions())
        recorder = await endpoint.connect(RecordingFactory(Recorder))
        payload = bytes(range(256)) * 4096
        recorder.transport.write(payload)
        await recorder.waitFor(len(payload))
        self.assertEqual(recorder.received, payload)
        recorder.transport.loseConnection()
        await recorder.lost


class StockWritesTests(EagerWritesMixin, TestCase):
    eager = False


class EagerWritesTests(EagerWritesMixin, TestCase):
    eager = True


class InstallTests(SynchronousTestCase):
    def test_installAndUninstall(self):
        """install(eagerWrites=True) switches Twisted's transports; uninstall() restores them."""
        result = runPython("""
            import tlsfast.twisted
            from twisted.internet import tcp
            from tlsfast._foreign.twistedtcp import EagerClient, EagerServer
            stockServer, stockClient = tcp.Port.transport, tcp.Client
            assert tlsfast.twisted.install()
            assert tcp.Port.transport is stockServer and tcp.Client is stockClient  # opt-in
            assert tlsfast.twisted.install(eagerWrites=True)
            assert tcp.Port.transport is EagerServer and tcp.Client is EagerClient
            tlsfast.twisted.uninstall()
            assert tcp.Port.transport is stockServer and tcp.Client is stockClient
            print("ok")
            """)
        self.assertEqual(result.stdout.strip(), "ok", result.stderr)

    def test_notWithoutTheEngine(self):
        """install() refusing (no engine) leaves Twisted's TCP alone too."""
        result = runPython("""
            import warnings
            import tlsfast.twisted
            from twisted.internet import tcp
            stockServer = tcp.Port.transport
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert tlsfast.twisted.install(eagerWrites=True) is False
            assert tcp.Port.transport is stockServer
            print("ok")
            """, TLSFAST_DISABLE="1")
        self.assertEqual(result.stdout.strip(), "ok", result.stderr)

