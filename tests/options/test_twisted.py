"""
tlsfast.options with Twisted over loopback TCP (stock Twisted and with
tlsfast installed): listenSSL, endpoints, startTLS, per-connection info,
session resumption, the handshake and close_notify timeouts, and
independent peers (openssl s_client / s_server, curl).

Timeouts run on a L{task.Clock} passed as C{reactor=}: the test decides when
time passes, so nothing depends on how fast the machine is.
"""

from __future__ import annotations

import socket
import ssl
import threading

from twisted.internet import defer, task
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.basic import LineReceiver

from tests import pki
from tests.twisted.processhelpers import TIMEOUT, writePEMs
from tests.twisted.tlshelpers import Echo, Recorder, RecordingFactory, parametrize
from tlsfast.options import ClientOptions, HandshakeTimeout, ServerOptions, connectionInfo

LEAF = pki.leaf("ecdsa", names=("example.com",))
CLIENT = pki.leaf("ecdsa", names=("client.example.com",), client=True)
CA = pki.certificate_authority()


def reactor():
    from twisted.internet import reactor as globalReactor

    return globalReactor


def serverOptions(**kwargs):
    return ServerOptions(LEAF.certificate, LEAF.key, **kwargs)


def clientOptions(hostname="example.com", **kwargs):
    return ClientOptions(hostname, **({"caCertificates": [CA.certificate]} | kwargs))


class InfoEcho(Echo):
    """Echo that keeps its connection's info (the Connection goes at loss)."""

    def connectionMade(self):
        self.info = connectionInfo(self.transport)
        Echo.connectionMade(self)


class LoopbackMixin:
    def listen(self, options, protocol=InfoEcho):
        factory = RecordingFactory(protocol)
        port = reactor().listenSSL(0, factory, options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return factory, port.getHost().port

    async def connect(self, portNumber, options, protocol=Recorder):
        endpoint = SSL4ClientEndpoint(reactor(), "127.0.0.1", portNumber, options)
        return await endpoint.connect(RecordingFactory(protocol))

    async def roundTrip(self, portNumber, options):
        """Connect, echo one message, close cleanly; return the client."""
        client = await self.connect(portNumber, options)
        await client.handshake
        client.transport.write(b"hello")
        await client.waitFor(5)
        client.info = connectionInfo(client.transport)
        client.transport.loseConnection()
        await client.lost
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        return client


class OptionsMixin(LoopbackMixin):
    async def test_echoAndInfo(self):
        """
        listenSSL and SSL4ClientEndpoint take the options; both sides report
        what was negotiated.
        """
        server, portNumber = self.listen(serverOptions(acceptableProtocols=[b"h2", b"x-test"]))
        client = await self.connect(portNumber, clientOptions(acceptableProtocols=[b"x-test"]))
        await client.handshake
        client.transport.write(b"hello")
        await client.waitFor(5)
        self.assertEqual(client.received, b"hello")
        self.assertEqual(client.transport.negotiatedProtocol, b"x-test")
        [serverProtocol] = server.instances
        for info in (connectionInfo(client.transport), connectionInfo(serverProtocol.transport)):
            self.assertEqual(info.version, "TLSv1.3")
            self.assertEqual(info.group, "X25519MLKEM768")
            self.assertEqual(info.alpn, b"x-test")
            self.assertEqual(info.serverName, "example.com")
            self.assertFalse(info.resumed)
            self.assertGreaterEqual(info.handshakeDuration, 0)
            if self.tlsfastInstalled:
                # the engine's byte counters: "hello" each way
                self.assertEqual(info.plaintextBytesReceived, 5)
                self.assertEqual(info.plaintextBytesSent, 5)
                # one 5-byte record (+22 B) each way at least, plus handshake
                self.assertGreater(info.ciphertextBytesReceived, 27)
                self.assertGreater(info.ciphertextBytesSent, 27)
            else:
                self.assertIsNone(info.plaintextBytesReceived)
                self.assertIsNone(info.plaintextBytesSent)
        client.transport.loseConnection()
        await defer.gatherResults([client.lost, serverProtocol.lost])

    async def test_resumption(self):
        """
        The second connection to the same port resumes (TLS 1.3 tickets and
        TLS 1.2 sessions); options with other trust settings do not.
        """
        serverOpts = serverOptions()
        server, portNumber = self.listen(serverOpts)
        for version in ("1.3", "1.2"):
            options = clientOptions(maximumVersion=version)
            first = await self.roundTrip(portNumber, options)
            second = await self.roundTrip(portNumber, options)
            self.assertEqual((first.info.resumed, second.info.resumed), (False, True), version)
            self.assertEqual(second.info.version, f"TLSv{version}")
            self.assertTrue(server.instances[-1].info.resumed)
            other = clientOptions(maximumVersion=version,
                                  caCertificates=[CA.certificate, pki.certificate_authority("rsa").certificate])
            third = await self.roundTrip(portNumber, other)
            self.assertFalse(third.info.resumed)

    async def test_clientCertificate(self):
        """A required client certificate, given by ClientOptions."""
        class PeerRecorder(InfoEcho):
            def handshakeCompleted(self):
                self.peer = self.transport.getPeerCertificate()
                InfoEcho.handshakeCompleted(self)

        server, portNumber = self.listen(serverOptions(
            clientCertificate="required", caCertificates=[CA.certificate]), PeerRecorder)
        await self.roundTrip(portNumber, clientOptions(
            clientCertificate=CLIENT.cert_pem, clientKey=CLIENT.key_pem))
        self.assertEqual(server.instances[0].peer.to_cryptography(), CLIENT.certificate)

    async def test_startTLS(self):
        """Both sides upgrade a plaintext line protocol with startTLS."""
        serverSide = defer.Deferred()

        class StartTLSServer(LineReceiver):
            def lineReceived(self, line):
                if line == b"STARTTLS":
                    self.sendLine(b"GO")
                    self.transport.startTLS(serverOptions())
                    serverSide.callback(self)
                else:
                    self.sendLine(b"secure " + line)

        class StartTLSClient(LineReceiver):
            def connectionMade(self):
                self.lines = defer.DeferredQueue()
                self.sendLine(b"STARTTLS")

            def lineReceived(self, line):
                if line == b"GO":
                    self.transport.startTLS(clientOptions())
                    self.sendLine(b"hello")
                else:
                    self.lines.put(line)

        port = reactor().listenTCP(0, Factory.forProtocol(StartTLSServer), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = await connectProtocol(
            TCP4ClientEndpoint(reactor(), "127.0.0.1", port.getHost().port), StartTLSClient())
        self.assertEqual(await client.lines.get(), b"secure hello")
        info = connectionInfo(client.transport)
        self.assertEqual(info.version, "TLSv1.3")
        server = await serverSide
        self.assertEqual(connectionInfo(server.transport).serverName, "example.com")
        lost = defer.Deferred()
        client.connectionLost = lambda reason: lost.callback(None)
        client.transport.loseConnection()
        await lost


parametrize(OptionsMixin, globals(), "Options")


class TimeoutMixin(LoopbackMixin):
    async def test_serverHandshakeTimeout(self):
        """
        A client that connects and never speaks is dropped when the server's
        handshake timeout passes; the application sees HandshakeTimeout.
        """
        clock = task.Clock()
        server, portNumber = self.listen(serverOptions(handshakeTimeout=10, reactor=clock))
        silentLost = defer.Deferred()

        class Silent(Protocol):
            def connectionLost(self, reason):
                silentLost.callback(None)

        await connectProtocol(TCP4ClientEndpoint(reactor(), "127.0.0.1", portNumber), Silent())
        serverProtocol = await server.connected
        clock.advance(9)
        self.assertFalse(serverProtocol.lost.called)
        clock.advance(1)
        await serverProtocol.lost
        self.assertTrue(serverProtocol.reason.check(HandshakeTimeout), serverProtocol.reason)
        self.assertTrue(serverProtocol.info.handshakeTimedOut)
        await silentLost
        self.assertEqual(clock.getDelayedCalls(), [])

    async def test_clientHandshakeTimeout(self):
        """A server that accepts and never answers: the client gives up."""
        clock = task.Clock()
        port = reactor().listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        options = clientOptions(handshakeTimeout=5, reactor=clock)
        client = await self.connect(port.getHost().port, options)
        clock.advance(5)
        await client.lost
        self.assertTrue(client.reason.check(HandshakeTimeout), client.reason)
        self.assertEqual(clock.getDelayedCalls(), [])

    async def test_handshakeInTimeCancelsTimer(self):
        clock = task.Clock()
        server, portNumber = self.listen(serverOptions(handshakeTimeout=5, reactor=clock))
        client = await self.roundTrip(portNumber, clientOptions(handshakeTimeout=5, reactor=clock))
        self.assertFalse(client.info.handshakeTimedOut)
        self.assertEqual(clock.getDelayedCalls(), [])

    async def test_closeTimeout(self):
        """
        The peer never answers our close_notify (stock Twisted would wait
        forever): when the close timeout passes the TCP connection is
        closed, and the application hears of it.
        """
        clock = task.Clock()
        stop = threading.Event()
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        pems = writePEMs(self)
        context.load_cert_chain(pems.cert, pems.key)

        def mute():
            # Handshake, send one byte, then never read again.
            listener.settimeout(TIMEOUT)
            sock, _ = listener.accept()
            with context.wrap_socket(sock, server_side=True) as tlsSocket:
                tlsSocket.sendall(b"!")
                stop.wait(TIMEOUT)

        thread = threading.Thread(target=mute, daemon=True)
        thread.start()
        self.addCleanup(lambda: (stop.set(), thread.join(TIMEOUT)))
        options = clientOptions(closeTimeout=3, reactor=clock)
        client = await self.connect(listener.getsockname()[1], options)
        await client.waitFor(1)
        info = connectionInfo(client.transport)
        client.transport.loseConnection()
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        self.assertFalse(client.lost.called)
        clock.advance(3)
        await client.lost
        self.assertTrue(info.closeTimedOut)
        # Our close_notify went out, the peer's never came: not a clean close.
        self.assertTrue(client.reason.check(ConnectionLost), client.reason)
        self.assertEqual(clock.getDelayedCalls(), [])

    async def test_closeAnsweredCancelsTimer(self):
        clock = task.Clock()
        server, portNumber = self.listen(serverOptions())
        client = await self.roundTrip(portNumber, clientOptions(closeTimeout=3, reactor=clock))
        self.assertFalse(client.info.closeTimedOut)
        self.assertEqual(clock.getDelayedCalls(), [])

    async def test_timeoutsHearTheConnectionsEvents(self):
        """
        On tlsfast the timeouts observe the glue's connection events; only
        stock Twisted's protocol, which has no such hook, gets its methods
        wrapped (by the seam).  Either way the timers go when the connection does.
        """
        clock = task.Clock()
        server, portNumber = self.listen(serverOptions())
        client = await self.connect(portNumber, clientOptions(handshakeTimeout=5, closeTimeout=3, reactor=clock))
        await client.handshake
        wrapped = {"loseConnection", "connectionLost"} & set(vars(client.transport))
        self.assertEqual(wrapped, set() if self.tlsfastInstalled else {"loseConnection", "connectionLost"})
        self.assertEqual(clock.getDelayedCalls(), [])  # the handshake timer went with the handshake
        client.transport.loseConnection()
        self.assertEqual(len(clock.getDelayedCalls()), 1)  # the close timer
        await client.lost
        self.assertEqual(clock.getDelayedCalls(), [])


parametrize(TimeoutMixin, globals(), "Timeouts")
