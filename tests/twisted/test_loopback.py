"""
Behaviour of TLS connections over real loopback TCP, each test run against
stock Twisted and with tlsfast installed (see tlshelpers.parametrize).
"""

from __future__ import annotations

import hashlib
import os

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import defer
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate
from twisted.protocols.basic import LineReceiver

import tlsfast.twisted
from tests import pki
from tests.twisted.tlshelpers import (
    Echo,
    Recorder,
    RecordingFactory,
    caCertificate,
    clientOptions,
    parametrize,
    privateCertificate,
    serverOptions,
)


def reactor():
    from twisted.internet import reactor as globalReactor

    return globalReactor


class LoopbackMixin:
    """Helpers to start a TLS server and connect a TLS client to it."""

    def listen(self, options=None, protocol=Echo):
        server = RecordingFactory(protocol)
        port = reactor().listenSSL(
            0, server, options or serverOptions(), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        return server, port.getHost().port

    async def connect(self, portNumber, options=None, protocol=Recorder):
        # Connect to 127.0.0.1 while verifying the name example.com.
        endpoint = SSL4ClientEndpoint(
            reactor(), "127.0.0.1", portNumber, options or clientOptions("example.com")
        )
        client = await endpoint.connect(RecordingFactory(protocol))
        return client

    async def closed(self, *protocols):
        await defer.gatherResults([p.lost for p in protocols])


class EchoMixin(LoopbackMixin):
    async def test_echo(self):
        """
        Bytes written by the client are echoed by the server; the transport
        provides ISSLTransport, exposes the pyOpenSSL Connection and the
        peer's certificate, and a clean close reports ConnectionDone.
        """
        server, portNumber = self.listen()
        client = await self.connect(portNumber)
        await client.handshake
        client.transport.write(b"hello, ")
        client.transport.writeSequence([b"wor", b"ld"])
        await client.waitFor(12)
        self.assertEqual(client.received, b"hello, world")

        self.assertTrue(ISSLTransport.providedBy(client.transport))
        self.assertIsInstance(client.transport.getHandle(), SSL.Connection)
        peer = Certificate.peerFromTransport(client.transport)
        self.assertEqual(peer.getSubject().commonName, b"example.com")
        self.assertIsNone(client.transport.negotiatedProtocol)

        client.transport.loseConnection()
        await self.closed(client, server.instances[0])
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        self.assertTrue(server.instances[0].reason.check(ConnectionDone))

    async def test_largeTransfer(self):
        """
        Megabytes in one write, plus many small writes, arrive intact in both
        directions (sha256 of the stream compared).
        """
        server, portNumber = self.listen()
        client = await self.connect(portNumber)
        payload = os.urandom(8 * 1024 * 1024 + 17)
        small = [os.urandom(n) for n in range(1, 300)]
        stream = payload + b"".join(small)
        client.transport.write(payload)
        for chunk in small:
            client.transport.write(chunk)
        await client.waitFor(len(stream))
        serverSide = server.instances[0]
        self.assertEqual(serverSide.length, len(stream))
        self.assertEqual(serverSide.digest.hexdigest(), hashlib.sha256(stream).hexdigest())
        self.assertEqual(client.digest.hexdigest(), hashlib.sha256(stream).hexdigest())
        client.transport.loseConnection()
        await self.closed(client, serverSide)


parametrize(EchoMixin, globals(), "EchoTests")


class VerificationMixin(LoopbackMixin):
    async def test_wrongName(self):
        """
        A certificate for another name fails the client's verification with
        service_identity's VerificationError; nothing is delivered.
        """
        server, portNumber = self.listen()
        client = await self.connect(portNumber, clientOptions("wrong.example.org"))
        await self.closed(client, server.instances[0])
        self.assertTrue(client.reason.check(VerificationError), client.reason)
        self.assertEqual(client.received, b"")

    async def test_untrustedAuthority(self):
        """
        A certificate from a CA the client does not trust fails the
        handshake with an OpenSSL.SSL.Error saying so.
        """
        server, portNumber = self.listen()
        client = await self.connect(portNumber, clientOptions(caName="another CA"))
        await self.closed(client, server.instances[0])
        self.assertTrue(client.reason.check(SSL.Error), client.reason)
        self.assertIn("certificate verify failed", str(client.reason.value))
        # The server learns why from the client's alert.
        self.assertTrue(server.instances[0].reason.check(SSL.Error))


parametrize(VerificationMixin, globals(), "VerificationTests")


class ClientCertificateMixin(LoopbackMixin):
    def requiringServer(self):
        return self.listen(
            serverOptions(
                verify=True, caCerts=[caCertificate().original], requireCertificate=True
            )
        )

    async def test_withCertificate(self):
        """
        A client certificate from the trusted CA is accepted and visible to
        the server.
        """
        server, portNumber = self.requiringServer()
        identity = pki.leaf("ecdsa", names=("client.example.com",), client=True)
        options = clientOptions(clientCertificate=privateCertificate(identity))
        client = await self.connect(portNumber, options)
        client.transport.write(b"ping")
        await client.waitFor(4)
        serverSide = server.instances[0]
        peer = Certificate.peerFromTransport(serverSide.transport)
        self.assertEqual(peer.getSubject().commonName, b"client.example.com")
        client.transport.loseConnection()
        await self.closed(client, serverSide)

    async def test_withoutCertificate(self):
        """
        A client without a certificate is refused: both sides report an
        OpenSSL.SSL.Error and no data reaches the server.
        """
        server, portNumber = self.requiringServer()
        client = await self.connect(portNumber)
        client.transport.write(b"ping")
        serverSide = await server.connected
        await self.closed(client, serverSide)
        self.assertTrue(serverSide.reason.check(SSL.Error), serverSide.reason)
        self.assertIn("certificate", str(serverSide.reason.value))
        self.assertTrue(client.reason.check(SSL.Error), client.reason)
        self.assertEqual(serverSide.received, b"")


parametrize(ClientCertificateMixin, globals(), "ClientCertificateTests")


class ALPNMixin(LoopbackMixin):
    async def test_negotiated(self):
        """
        Both sides see the protocol chosen by ALPN.
        """
        server, portNumber = self.listen(
            serverOptions(acceptableProtocols=[b"h2", b"http/1.1"])
        )
        client = await self.connect(
            portNumber, clientOptions(acceptableProtocols=[b"http/1.1", b"spdy/3"])
        )
        await client.handshake
        self.assertEqual(client.transport.negotiatedProtocol, b"http/1.1")
        client.transport.write(b"x")
        serverSide = await server.connected
        await serverSide.waitFor(1)
        self.assertEqual(serverSide.transport.negotiatedProtocol, b"http/1.1")
        client.transport.loseConnection()
        await self.closed(client, serverSide)

    async def test_noOverlap(self):
        """
        Without a common protocol the server's ALPN callback declines (with
        pyOpenSSL 26 an internal-error alert): the handshake fails on both
        sides with OpenSSL.SSL.Error and nothing is delivered.
        """
        server, portNumber = self.listen(serverOptions(acceptableProtocols=[b"h2"]))
        client = await self.connect(portNumber, clientOptions(acceptableProtocols=[b"foo"]))
        client.transport.write(b"abc")
        serverSide = await server.connected
        await self.closed(client, serverSide)
        self.assertTrue(client.reason.check(SSL.Error), client.reason)
        self.assertIn("alert", str(client.reason.value))
        self.assertTrue(serverSide.reason.check(SSL.Error), serverSide.reason)
        self.assertEqual(serverSide.received, b"")
        self.assertFalse(client.completedHandshake)


parametrize(ALPNMixin, globals(), "ALPNTests")


class StartTLSServer(LineReceiver):
    """Plain-text until 'STARTTLS'; then TLS, echoing raw data."""

    def lineReceived(self, line):
        if line == b"STARTTLS":
            self.sendLine(b"GO")
            self.transport.startTLS(serverOptions(acceptableProtocols=[b"proto"]))
            self.setRawMode()

    def rawDataReceived(self, data):
        self.transport.write(data)

    def connectionLost(self, reason):
        self.factory.lost.callback(None)


class StartTLSClient(Recorder):
    def connectionMade(self):
        self.transport.write(b"STARTTLS\r\n")
        self.started = False

    def dataReceived(self, data):
        if not self.started:
            self.assertGo(data)
            self.started = True
            self.transport.startTLS(clientOptions(acceptableProtocols=[b"proto"]))
            self.transport.write(b"secret")
            return
        Recorder.dataReceived(self, data)

    def assertGo(self, data):
        if data != b"GO\r\n":
            raise AssertionError(data)


class StartTLSMixin:
    async def test_startTLS(self):
        """
        A plain-text connection upgraded with ITLSTransport.startTLS on both
        sides carries TLS afterwards: ALPN, peer certificate, echo.
        """
        serverFactory = Factory.forProtocol(StartTLSServer)
        serverFactory.lost = defer.Deferred()
        port = reactor().listenTCP(0, serverFactory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        endpoint = TCP4ClientEndpoint(reactor(), "127.0.0.1", port.getHost().port)
        client = await endpoint.connect(Factory.forProtocol(StartTLSClient))
        await client.handshake
        await client.waitFor(6)
        self.assertEqual(client.received, b"secret")
        self.assertTrue(ISSLTransport.providedBy(client.transport))
        self.assertEqual(client.transport.protocol.negotiatedProtocol, b"proto")
        if self.tlsfastInstalled:
            # tlsfast also answers on the upgraded transport itself
            self.assertEqual(client.transport.negotiatedProtocol, b"proto")
        else:
            # stock Twisted does not (the gap tlsfast closes)
            with self.assertRaises(AttributeError):
                _ = client.transport.negotiatedProtocol
        self.assertEqual(
            isinstance(client.transport.protocol, tlsfast.twisted.TLSMemoryBIOProtocol),
            self.tlsfastInstalled,
        )
        peer = Certificate.peerFromTransport(client.transport)
        self.assertEqual(peer.getSubject().commonName, b"example.com")
        client.transport.loseConnection()
        await defer.gatherResults([client.lost, serverFactory.lost])
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        # Both TLS layers made by startTLS ran on the implementation tested.
        self.assertEqual(self.engineConnections, 2 if self.expectEngine else 0)


parametrize(StartTLSMixin, globals(), "StartTLSTests")


class RawClient(Protocol):
    """A TCP client that says whatever it is told to, then waits."""

    def __init__(self):
        self.lost = defer.Deferred()

    def connectionLost(self, reason):
        self.lost.callback(None)


class BadPeerMixin(LoopbackMixin):
    async def test_garbage(self):
        """
        A peer sending bytes that are not TLS is dropped with an
        OpenSSL.SSL.Error naming the problem, while an established connection
        to the same server keeps working.
        """
        server, portNumber = self.listen()
        good = await self.connect(portNumber)
        good.transport.write(b"before")
        await good.waitFor(6)

        endpoint = TCP4ClientEndpoint(reactor(), "127.0.0.1", portNumber)
        raw = await endpoint.connect(Factory.forProtocol(RawClient))
        raw.transport.write(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        await raw.lost
        victim = server.instances[1]
        await victim.lost
        self.assertTrue(victim.reason.check(SSL.Error), victim.reason)
        self.assertTrue(str(victim.reason.value), victim.reason)
        self.assertEqual(victim.received, b"")

        good.transport.write(b" and after")
        await good.waitFor(16)
        self.assertEqual(good.received, b"before and after")
        good.transport.loseConnection()
        await self.closed(good, server.instances[0])

    async def test_vanishMidRecord(self):
        """
        A peer that disappears in the middle of a TLS record (no close_notify)
        is reported to the application as ConnectionLost, not a clean close;
        the complete records before it were delivered.
        """
        server, portNumber = self.listen(protocol=Recorder)
        client = await self.connect(portNumber)
        client.transport.write(b"complete")
        serverSide = await server.connected
        await serverSide.waitFor(8)
        # Under the TLS layer: an application-data record header announcing
        # 16 KiB, 100 bytes of it, then the TCP connection goes away.
        tcp = client.transport.transport
        tcp.write(b"\x17\x03\x03\x40\x00" + b"\0" * 100)
        tcp.loseConnection()
        await self.closed(client, serverSide)
        self.assertEqual(serverSide.received, b"complete")
        self.assertTrue(serverSide.reason.check(ConnectionLost), serverSide.reason)
        self.assertFalse(serverSide.reason.check(ConnectionDone))


parametrize(BadPeerMixin, globals(), "BadPeerTests")
