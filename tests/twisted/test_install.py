"""
tlsfast.twisted.install() / uninstall(): every Twisted TLS entry point runs
through tlsfast afterwards (proved by counting engine-driven connections),
regardless of import order; explicit use without patching; refusal when the
engine is unavailable.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

from twisted.internet import defer
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    clientFromString,
    serverFromString,
    wrapClientTLS,
    wrapServerTLS,
)
from twisted.internet.protocol import Factory
from twisted.protocols import tls as stockTLS
from twisted.protocols._tls_legacy import LegacyContextFactoryWarning
from twisted.trial.unittest import SynchronousTestCase, TestCase

import tlsfast
import tlsfast.twisted
from tests import pki
from tests.twisted.tlshelpers import (
    Echo,
    ImplementationMixin,
    Recorder,
    RecordingFactory,
    caCertificate,
    clientOptions,
    parametrize,
    serverOptions,
)
from tlsfast.twisted import _protocol

ROOT = Path(__file__).resolve().parents[2]

# (module, attribute) pairs that hold Twisted's TLS classes.
BINDINGS = [
    ("twisted.protocols.tls", "TLSMemoryBIOProtocol"),
    ("twisted.protocols.tls", "BufferingTLSTransport"),
    ("twisted.protocols.tls", "TLSMemoryBIOFactory"),
    ("twisted.internet._newtls", "TLSMemoryBIOFactory"),
    ("twisted.internet.endpoints", "TLSMemoryBIOFactory"),
    ("twisted.protocols._sni", "TLSMemoryBIOFactory"),
]


def reactor():
    from twisted.internet import reactor as globalReactor

    return globalReactor


def bound(module, attribute):
    return getattr(sys.modules[module], attribute)


class InstallTests(SynchronousTestCase):
    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        self.addCleanup(tlsfast.twisted.uninstall)

    def test_installAndUninstall(self):
        """
        install() rebinds every module-level name of Twisted's TLS classes to
        tlsfast's; uninstall() restores Twisted's; both are idempotent.
        """
        ours = {
            "TLSMemoryBIOProtocol": tlsfast.twisted.TLSMemoryBIOProtocol,
            "BufferingTLSTransport": tlsfast.twisted.BufferingTLSTransport,
            "TLSMemoryBIOFactory": tlsfast.twisted.TLSMemoryBIOFactory,
        }
        stock = {
            "TLSMemoryBIOProtocol": _protocol.StockTLSMemoryBIOProtocol,
            "BufferingTLSTransport": _protocol.StockBufferingTLSTransport,
            "TLSMemoryBIOFactory": _protocol.StockTLSMemoryBIOFactory,
        }
        for _ in range(2):
            self.assertTrue(tlsfast.twisted.install())
            self.assertTrue(tlsfast.twisted.installed())
            for module, attribute in BINDINGS:
                self.assertIs(bound(module, attribute), ours[attribute], (module, attribute))
        for _ in range(2):
            tlsfast.twisted.uninstall()
            self.assertFalse(tlsfast.twisted.installed())
            for module, attribute in BINDINGS:
                self.assertIs(bound(module, attribute), stock[attribute], (module, attribute))

    def test_classesAreTwistedClasses(self):
        """
        tlsfast's classes are subclasses of Twisted's, and the default
        protocol of the factory is the buffering transport.
        """
        self.assertTrue(issubclass(tlsfast.twisted.BufferingTLSTransport,
                                   _protocol.StockBufferingTLSTransport))
        self.assertTrue(issubclass(tlsfast.twisted.BufferingTLSTransport,
                                   tlsfast.twisted.TLSMemoryBIOProtocol))
        self.assertTrue(issubclass(tlsfast.twisted.TLSMemoryBIOFactory,
                                   _protocol.StockTLSMemoryBIOFactory))
        self.assertIs(tlsfast.twisted.TLSMemoryBIOFactory.protocol,
                      tlsfast.twisted.BufferingTLSTransport)

    def test_constructibleWithoutFactory(self):
        """
        TLSMemoryBIOProtocol(None, None) can be constructed, as Twisted's.
        """
        protocol = tlsfast.twisted.TLSMemoryBIOProtocol(None, None)
        self.assertIsNone(protocol.factory)
        self.assertIsNone(protocol.negotiatedProtocol)

    def test_legacyWarningPointsAtCaller(self):
        """
        The LegacyContextFactoryWarning for a context factory providing no
        interface is attributed to the line that made the factory.
        """

        class Legacy:
            def getContext(self):
                return serverOptions().getContext()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tlsfast.twisted.TLSMemoryBIOFactory(Legacy(), False, Factory())
        legacy = [w for w in caught if issubclass(w.category, LegacyContextFactoryWarning)]
        self.assertEqual(len(legacy), 1)
        self.assertEqual(legacy[0].filename, __file__)


def runPython(*sources, **env):
    """Run the (dedented, concatenated) sources in a fresh interpreter."""
    import os

    environment = dict(os.environ)
    environment.pop("TLSFAST_DISABLE", None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "".join(textwrap.dedent(s) for s in sources)],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )


CHECK_BINDINGS = f"""
    import sys
    import tlsfast.twisted as t
    ours = {{"TLSMemoryBIOProtocol": t.TLSMemoryBIOProtocol,
            "BufferingTLSTransport": t.BufferingTLSTransport,
            "TLSMemoryBIOFactory": t.TLSMemoryBIOFactory}}
    for module, attribute in {BINDINGS!r}:
        __import__(module)
        value = getattr(sys.modules[module], attribute)
        assert value is ours[attribute], (module, attribute, value)
    print("ok")
"""


class ImportOrderTests(SynchronousTestCase):
    """
    Fresh interpreters: install() works whether Twisted's modules that bind
    the factory name at import time were imported before or after it.
    """

    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")

    def test_installBeforeImport(self):
        result = runPython(
            """
            import sys
            import tlsfast.twisted
            assert tlsfast.twisted.install()
            # install() must not pick the reactor for the application.
            assert "twisted.internet.reactor" not in sys.modules
            """,
            CHECK_BINDINGS,
        )
        self.assertEqual(result.stdout.strip(), "ok", result.stderr)

    def test_installAfterImport(self):
        result = runPython(
            """
            import twisted.internet.endpoints, twisted.internet._newtls
            import twisted.protocols._sni, twisted.protocols.tls
            import twisted.web.client
            import tlsfast.twisted
            assert tlsfast.twisted.install()
            """,
            CHECK_BINDINGS,
        )
        self.assertEqual(result.stdout.strip(), "ok", result.stderr)

    def test_refusesWithoutEngine(self):
        """
        With the engine unavailable (TLSFAST_DISABLE=1), install() warns
        once, returns False and leaves Twisted untouched; the classes still
        work on Twisted's own record path.
        """
        result = runPython(
            """
            import warnings
            import tlsfast, tlsfast.twisted
            import twisted.protocols.tls as tls
            assert not tlsfast.ACCELERATED
            stock = tls.TLSMemoryBIOFactory
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert tlsfast.twisted.install() is False
                assert tlsfast.twisted.install() is False
            assert [w.category.__name__ for w in caught] == ["TLSFastUnavailableWarning"], caught
            assert tls.TLSMemoryBIOFactory is stock
            assert not tlsfast.twisted.installed()

            # The classes used explicitly still work, on Twisted's path.
            from twisted.internet.protocol import Factory, Protocol
            from twisted.internet.task import Clock
            from twisted.internet.testing import StringTransport
            from tests.twisted.tlshelpers import clientOptions, serverOptions

            class Sink(Protocol):
                def connectionMade(self):
                    self.received = b""
                def dataReceived(self, data):
                    self.received += data

            sides = []
            for options, isClient in ((clientOptions(), True), (serverOptions(), False)):
                factory = tlsfast.twisted.TLSMemoryBIOFactory(
                    options, isClient, Factory.forProtocol(Sink), clock=Clock())
                protocol = tlsfast.twisted.TLSMemoryBIOProtocol(
                    factory, factory.wrappedFactory.buildProtocol(None))
                protocol.makeConnection(StringTransport())
                assert protocol._engine is None
                sides.append(protocol)
            client, server = sides
            client.write(b"still works")
            for _ in range(4):
                for source, target in ((client, server), (server, client)):
                    data = source.transport.value()
                    source.transport.clear()
                    if data:
                        target.dataReceived(data)
            assert server.wrappedProtocol.received == b"still works", server.wrappedProtocol.received
            print("ok")
            """,
            TLSFAST_DISABLE="1",
        )
        self.assertEqual(result.stdout.strip(), "ok", result.stderr)


class EntryPointsMixin:
    """
    One echo round trip per Twisted TLS entry point; ImplementationMixin's
    counter proves the connections ran through tlsfast (or, for the stock
    run, did not).
    """

    async def roundTrip(self, server, client):
        client.transport.write(b"ping")
        await client.waitFor(4)
        self.assertEqual(client.received, b"ping")
        client.transport.loseConnection()
        await defer.gatherResults([client.lost] + [p.lost for p in server.instances])
        # A client and a server connection, both on the implementation tested.
        self.assertEqual(self.engineConnections, 2 if self.expectEngine else 0)

    async def test_listenSSLConnectSSL(self):
        server = RecordingFactory(Echo)
        port = reactor().listenSSL(0, server, serverOptions(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        clientFactory = RecordingFactory(Recorder)
        reactor().connectSSL("127.0.0.1", port.getHost().port, clientFactory,
                             clientOptions())
        client = await clientFactory.connected
        await self.roundTrip(server, client)

    async def test_sslEndpoints(self):
        server = RecordingFactory(Echo)
        port = await SSL4ServerEndpoint(
            reactor(), 0, serverOptions(), interface="127.0.0.1").listen(server)
        self.addCleanup(port.stopListening)
        client = await SSL4ClientEndpoint(
            reactor(), "127.0.0.1", port.getHost().port, clientOptions()
        ).connect(RecordingFactory(Recorder))
        await self.roundTrip(server, client)

    def pemDirectory(self, *pems):
        directory = Path(tempfile.mkdtemp(prefix="tlsfast-pem-"))
        self.addCleanup(shutil.rmtree, directory, True)
        for index, pem in enumerate(pems):
            (directory / f"{index}.pem").write_bytes(pem)
        return directory

    async def test_endpointStrings(self):
        """ssl: server string, tls: client string."""
        identity = pki.leaf("ecdsa", names=("example.com",))
        files = self.pemDirectory(identity.key_pem, identity.cert_pem)
        server = RecordingFactory(Echo)
        port = await serverFromString(
            reactor(),
            f"ssl:0:interface=127.0.0.1:privateKey={files / '0.pem'}:certKey={files / '1.pem'}",
        ).listen(server)
        self.addCleanup(port.stopListening)
        roots = self.pemDirectory(pki.certificate_authority().cert_pem)
        number = port.getHost().port
        client = await clientFromString(
            reactor(),
            f"tls:example.com:{number}:trustRoots={roots}:endpoint=tcp\\:127.0.0.1\\:{number}",
        ).connect(RecordingFactory(Recorder))
        await self.roundTrip(server, client)

    async def test_sniServerString(self):
        """tls: server string (the SNI connection creator), wrapClientTLS."""
        identity = pki.leaf("ecdsa", names=("example.com",))
        pems = self.pemDirectory(identity.cert_pem + identity.key_pem)
        server = RecordingFactory(Echo)
        port = await serverFromString(
            reactor(), f"tls:{pems}:port=0:interface=127.0.0.1").listen(server)
        self.addCleanup(port.stopListening)
        client = await wrapClientTLS(
            clientOptions(), TCP4ClientEndpoint(reactor(), "127.0.0.1", port.getHost().port)
        ).connect(RecordingFactory(Recorder))
        await self.roundTrip(server, client)

    async def test_wrapServerTLS(self):
        server = RecordingFactory(Echo)
        port = await wrapServerTLS(
            serverOptions(), TCP4ServerEndpoint(reactor(), 0, interface="127.0.0.1")
        ).listen(server)
        self.addCleanup(port.stopListening)
        client = await wrapClientTLS(
            clientOptions(), TCP4ClientEndpoint(reactor(), "127.0.0.1", port.getHost().port)
        ).connect(RecordingFactory(Recorder))
        await self.roundTrip(server, client)

    async def test_httpsAgent(self):
        """The HTTPS Agent (twisted.web.client) over a TLS web server."""
        from twisted.internet.ssl import trustRootFromCertificates
        from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool, readBody
        from twisted.web.resource import Resource
        from twisted.web.static import Data

        root = Resource()
        root.putChild(b"hello", Data(b"hello over tls", "text/plain"))
        site = TrackingSite(root)
        port = reactor().listenSSL(
            0, site, serverOptions(names=("127.0.0.1",)), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        pool = HTTPConnectionPool(reactor(), persistent=False)
        agent = Agent(
            reactor(),
            BrowserLikePolicyForHTTPS(trustRootFromCertificates([caCertificate()])),
            pool=pool,
        )
        response = await agent.request(
            b"GET", b"https://127.0.0.1:%d/hello" % (port.getHost().port,))
        body = await readBody(response)
        self.assertEqual(body, b"hello over tls")
        await pool.closeCachedConnections()
        await defer.gatherResults(site.lost)
        self.assertEqual(self.engineConnections, 2 if self.expectEngine else 0)


def TrackingSite(resource):
    from twisted.web.server import Site

    class Tracking(Site):
        def __init__(self, resource):
            Site.__init__(self, resource)
            self.lost = []

        def buildProtocol(self, addr):
            channel = Site.buildProtocol(self, addr)
            lost = defer.Deferred()
            self.lost.append(lost)
            connectionLost = channel.connectionLost

            def tracked(reason):
                connectionLost(reason)
                lost.callback(None)

            channel.connectionLost = tracked
            return channel

    return Tracking(resource)


parametrize(EntryPointsMixin, globals(), "EntryPointTests")


class ExplicitUseTests(TestCase):
    """
    Without install(): tlsfast's classes and wrap helpers used directly,
    while Twisted's own names stay stock.
    """

    tlsfastInstalled = False

    def setUp(self):
        if not tlsfast.ACCELERATED:
            self.skipTest("tlsfast engine unavailable")
        self.assertFalse(tlsfast.twisted.installed())
        self.assertIs(stockTLS.TLSMemoryBIOFactory, _protocol.StockTLSMemoryBIOFactory)
        ImplementationMixin.setUp(self)
        self.expectEngine = True

    checkImplementation = ImplementationMixin.checkImplementation

    async def test_wrapHelpers(self):
        server = RecordingFactory(Echo)
        port = await tlsfast.twisted.wrapServerTLS(
            serverOptions(), TCP4ServerEndpoint(reactor(), 0, interface="127.0.0.1")
        ).listen(server)
        self.addCleanup(port.stopListening)
        client = await tlsfast.twisted.wrapClientTLS(
            clientOptions(), TCP4ClientEndpoint(reactor(), "127.0.0.1", port.getHost().port)
        ).connect(RecordingFactory(Recorder))
        await EntryPointsMixin.roundTrip(self, server, client)
        self.assertIsInstance(client.transport, tlsfast.twisted.BufferingTLSTransport)

    async def test_factoryOverTCP(self):
        server = RecordingFactory(Echo)
        port = reactor().listenTCP(
            0, tlsfast.twisted.TLSMemoryBIOFactory(serverOptions(), False, server),
            interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        clientFactory = RecordingFactory(Recorder)
        reactor().connectTCP(
            "127.0.0.1", port.getHost().port,
            tlsfast.twisted.TLSMemoryBIOFactory(clientOptions(), True, clientFactory))
        client = await clientFactory.connected
        await EntryPointsMixin.roundTrip(self, server, client)
