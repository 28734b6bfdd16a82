"""
install() after TLS ports are already listening: those ports stay on stock
Twisted (proved by connecting to them), and install() says so with a
StockListenersWarning naming their addresses; without such ports it is
silent.
"""

from __future__ import annotations

import warnings

from twisted.internet import ssl as legacySSL
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
)
from twisted.internet.endpoints import wrapServerTLS as stockWrapServerTLS
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols.policies import WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory as StockFactory
from twisted.trial.unittest import SynchronousTestCase, TestCase

import tlsfast
import tlsfast.twisted
from tests.twisted.tlshelpers import (
    Echo,
    Recorder,
    RecordingFactory,
    clientOptions,
    countEngineConnections,
    serverOptions,
)
from tlsfast._addresses import describeAddress, hostPort
from tlsfast.twisted import StockListenersWarning, _listeners


def reactor():
    from twisted.internet import reactor as globalReactor

    return globalReactor


def installCaught():
    """install(); return its result and the StockListenersWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tlsfast.twisted.install()
    return result, [w for w in caught if issubclass(w.category, StockListenersWarning)]


class InstallAfterListeningTests(TestCase):
    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        tlsfast.twisted.uninstall()
        self.addCleanup(tlsfast.twisted.uninstall)
        countEngineConnections(self)

    def listenSSL(self):
        port = reactor().listenSSL(0, RecordingFactory(Echo), serverOptions(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port

    async def echoThrough(self, port):
        """One echo round trip to C{port}; return how many sides used the engine."""
        before = self.engineConnections
        client = await SSL4ClientEndpoint(
            reactor(), "127.0.0.1", port.getHost().port, clientOptions()
        ).connect(RecordingFactory(Recorder))
        client.transport.write(b"ping")
        await client.waitFor(4)
        client.transport.loseConnection()
        await client.lost
        server = port.factory.wrappedFactory if hasattr(port.factory, "wrappedFactory") else port.factory
        for instance in getattr(server, "instances", []):
            await instance.lost
        return self.engineConnections - before

    async def test_listenSSLNamed(self):
        """
        A listenSSL port opened before install() is named in the warning,
        and it really stays stock: its server side does not use the engine
        (the client, made after install(), does).
        """
        port = self.listenSSL()
        result, caught = installCaught()
        self.assertTrue(result)
        self.assertEqual(len(caught), 1, caught)
        message = str(caught[0].message)
        self.assertIn(f"127.0.0.1:{port.getHost().port}", message)
        self.assertIn("stock", message)
        self.assertEqual(caught[0].filename, __file__)  # points at the install() call
        self.assertEqual(await self.echoThrough(port), 1)

    async def test_endpointsNamed(self):
        """
        Ports from SSL4ServerEndpoint, Twisted's wrapServerTLS and a
        wrapping factory around a TLS factory are all named; a plain TCP
        port is not.
        """
        ssl4 = await SSL4ServerEndpoint(reactor(), 0, serverOptions(),
                                        interface="127.0.0.1").listen(RecordingFactory(Echo))
        wrapped = await stockWrapServerTLS(
            serverOptions(), TCP4ServerEndpoint(reactor(), 0, interface="127.0.0.1")
        ).listen(RecordingFactory(Echo))
        outer = await TCP4ServerEndpoint(reactor(), 0, interface="127.0.0.1").listen(
            WrappingFactory(StockFactory(serverOptions(), False, RecordingFactory(Echo))))
        plain = await TCP4ServerEndpoint(reactor(), 0, interface="127.0.0.1").listen(
            Factory.forProtocol(Protocol))
        for port in (ssl4, wrapped, outer, plain):
            self.addCleanup(port.stopListening)
        _, caught = installCaught()
        self.assertEqual(len(caught), 1, caught)
        message = str(caught[0].message)
        for port in (ssl4, wrapped, outer):
            self.assertIn(f"127.0.0.1:{port.getHost().port}", message)
        self.assertNotIn(f":{plain.getHost().port}", message)

    async def test_noListenersNoWarning(self):
        """
        No warning without TLS listeners, nor for ports opened after
        install() (which use the engine), nor when install() is repeated.
        """
        plain = await TCP4ServerEndpoint(reactor(), 0, interface="127.0.0.1").listen(
            Factory.forProtocol(Protocol))
        self.addCleanup(plain.stopListening)
        self.assertEqual(installCaught(), (True, []))
        port = self.listenSSL()
        self.assertEqual(installCaught(), (True, []))
        self.assertEqual(await self.echoThrough(port), 2)

    async def test_stoppedListenerNotNamed(self):
        """A port that stopped listening before install() is not named."""
        port = reactor().listenSSL(0, RecordingFactory(Echo), serverOptions(), interface="127.0.0.1")
        await port.stopListening()
        self.assertEqual(installCaught(), (True, []))

    async def test_legacySSLPortNotNamed(self):
        """
        A legacy twisted.internet.ssl.Port starts TLS per connection through
        the names install() rebinds: it is not named, and its connections
        run on the engine.
        """
        port = legacySSL.Port(0, RecordingFactory(Echo), serverOptions(),
                              interface="127.0.0.1", reactor=reactor())
        port.startListening()
        self.addCleanup(port.stopListening)
        self.assertEqual(installCaught(), (True, []))
        self.assertEqual(await self.echoThrough(port), 2)


class FakeReactor:
    def __init__(self, readers):
        self.readers = readers

    def getReaders(self):
        if isinstance(self.readers, Exception):
            raise self.readers
        return self.readers


class EnumerationTests(SynchronousTestCase):
    """The enumeration on its own, against reactors it cannot read."""

    def warned(self, reactor):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _listeners.warnStockListeners(reactor)
        return [str(w.message) for w in caught if issubclass(w.category, StockListenersWarning)]

    def test_unreadableReactorWarnsGenerically(self):
        """
        A reactor whose readers cannot be listed (no getReaders, or it
        raises) gives one generic warning instead of an error.
        """
        for reactor in (object(), FakeReactor(RuntimeError("internals changed"))):
            self.assertIsNone(_listeners.stockTLSListeners(reactor))
            messages = self.warned(reactor)
            self.assertEqual(len(messages), 1)
            self.assertIn("could not check", messages[0])

    def test_oddReadersIgnored(self):
        """Readers that are not listening ports, or have no factory, are skipped."""
        self.assertEqual(_listeners.stockTLSListeners(FakeReactor([object(), Clock()])), [])
        self.assertEqual(self.warned(FakeReactor([object()])), [])

    def test_noReactorNoWarning(self):
        """Before any reactor is imported there is nothing to warn about."""
        self.assertEqual(self.warned(None), [])

    def test_describeAddress(self):
        from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

        self.assertEqual(describeAddress(IPv4Address("TCP", "127.0.0.1", 443)), "127.0.0.1:443")
        self.assertEqual(describeAddress(IPv6Address("TCP", "::1", 443)), "[::1]:443")
        self.assertEqual(describeAddress(UNIXAddress(b"/run/tls.sock")), "/run/tls.sock")
        self.assertEqual(hostPort("2001:db8::1", 8443), "[2001:db8::1]:8443")
