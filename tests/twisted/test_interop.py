"""
Interoperability with real, non-Twisted TLS peers over loopback: the system
`openssl` (3.0) as client and as server, and `curl` against twisted.web.
Each test runs against stock Twisted and with tlsfast installed (see
tlshelpers.parametrize); our side is the Twisted one.
"""

from __future__ import annotations

import shutil

from twisted.internet import defer
from twisted.internet.endpoints import SSL4ClientEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import SkipTest
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from tests.twisted.processhelpers import Background, run, writePEMs
from tests.twisted.tlshelpers import (
    Recorder,
    RecordingFactory,
    clientOptions,
    parametrize,
    serverOptions,
)


def reactor():
    from twisted.internet import reactor as globalReactor

    return globalReactor


def requireTool(name):
    if shutil.which(name) is None:
        raise SkipTest(f"{name} not installed")


class LineEcho(LineReceiver):
    """Echoes one line, then closes the connection (close_notify)."""

    delimiter = b"\n"

    def connectionMade(self):
        self.factory.connections.append(self)
        self.lost = defer.Deferred()
        self.reason = None

    def lineReceived(self, line):
        self.line = line
        self.negotiatedProtocol = self.transport.negotiatedProtocol
        self.sendLine(b"echo: " + line)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self.reason = reason
        self.lost.callback(None)


class OpenSSLClientMixin:
    """`openssl s_client` against our Twisted server."""

    def listen(self, options):
        factory = Factory.forProtocol(LineEcho)
        factory.connections = []
        port = reactor().listenSSL(0, factory, options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return factory, port.getHost().port

    async def sClient(self, portNumber, pems, *extra):
        requireTool("openssl")
        result = await run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{portNumber}",
             "-servername", "example.com", "-CAfile", pems.ca, "-verify_return_error",
             "-verify_hostname", "example.com", "-ign_eof", *extra],
            input=b"hello from openssl\n",
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result

    async def test_tls13(self):
        """
        s_client (TLS 1.3, ChaCha20 pinned, ALPN) verifies our certificate,
        negotiates what we configured, and gets its line echoed; the server
        sees the same protocol, cipher and ALPN, and closes cleanly.
        """
        pems = writePEMs(self)
        factory, portNumber = self.listen(
            serverOptions(acceptableProtocols=[b"tlsfast-test", b"http/1.1"])
        )
        result = await self.sClient(
            portNumber, pems, "-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256",
            "-alpn", "tlsfast-test",
        )
        out = result.stdout
        self.assertIn("New, TLSv1.3, Cipher is TLS_CHACHA20_POLY1305_SHA256", out)
        self.assertIn("ALPN protocol: tlsfast-test", out)
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn("echo: hello from openssl\n", out)

        [server] = factory.connections
        await server.lost
        self.assertEqual(server.line, b"hello from openssl")
        self.assertTrue(server.reason.check(ConnectionDone), server.reason)
        self.assertEqual(server.negotiatedProtocol, b"tlsfast-test")

    async def test_tls12(self):
        """
        s_client limited to TLS 1.2 with one ECDHE-ECDSA suite: the same
        suite is negotiated on both sides and the echo works.
        """
        pems = writePEMs(self)
        factory, portNumber = self.listen(serverOptions())
        result = await self.sClient(
            portNumber, pems, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"
        )
        out = result.stdout
        self.assertIn("New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256", out)
        self.assertIn("No ALPN negotiated", out)
        self.assertIn("echo: hello from openssl\n", out)
        [server] = factory.connections
        await server.lost
        self.assertTrue(server.reason.check(ConnectionDone), server.reason)

    async def test_untrusted(self):
        """
        s_client trusting another CA refuses our certificate (exit status 1,
        "certificate verify failed"); the server reports an OpenSSL error,
        not a clean close, and never sees the line.
        """
        from OpenSSL import SSL

        from tests import pki

        requireTool("openssl")
        pems = writePEMs(self)
        otherCA = pems.directory + "/other-ca.pem"
        with open(otherCA, "wb") as f:
            f.write(pki.certificate_authority(name="another CA").cert_pem)
        factory, portNumber = self.listen(serverOptions())
        result = await run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{portNumber}",
             "-servername", "example.com", "-CAfile", otherCA, "-verify_return_error"],
            input=b"hello\n",
        )
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("certificate verify failed", result.stderr)
        [server] = factory.connections
        await server.lost
        self.assertTrue(server.reason.check(SSL.Error), server.reason)
        self.assertFalse(hasattr(server, "line"))


parametrize(OpenSSLClientMixin, globals(), "OpenSSLClientTests")


class OpenSSLServerMixin:
    """Our Twisted client against `openssl s_server -rev`."""

    async def sServer(self, *extra):
        requireTool("openssl")
        pems = writePEMs(self)
        server = Background(
            self.addCleanup,
            ["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-rev",
             "-cert", pems.cert, "-key", pems.key, *extra],
        )
        match = await server.waitForOutput(r"ACCEPT 127\.0\.0\.1:(\d+)")
        return server, int(match.group(1))

    async def exchange(self, server, portNumber, options):
        endpoint = SSL4ClientEndpoint(reactor(), "127.0.0.1", portNumber, options)
        client = await endpoint.connect(RecordingFactory(Recorder))
        await client.handshake
        client.transport.write(b"hello from twisted\n")
        await client.waitFor(len(b"detsiwt morf olleh\n"))
        self.assertEqual(client.received, b"detsiwt morf olleh\n")
        # What our side negotiated, read while the connection is open.
        handle = client.transport.getHandle()
        client.negotiated = (
            handle.get_protocol_version_name(),
            handle.get_cipher_name(),
            client.transport.negotiatedProtocol,
        )
        client.transport.loseConnection()
        await client.lost
        self.assertEqual(await server.wait(), 0, server.output())
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        return client, server.output()

    async def test_tls13(self):
        """
        Our client verifies s_server's certificate, negotiates ALPN, gets its
        line back reversed, and closes with close_notify (s_server then
        reports the connection closed and exits).
        """
        server, portNumber = await self.sServer(
            "-alpn", "tlsfast-test", "-ciphersuites", "TLS_AES_128_GCM_SHA256"
        )
        client, out = await self.exchange(
            server, portNumber, clientOptions(acceptableProtocols=[b"tlsfast-test"])
        )
        self.assertIn("Protocol version: TLSv1.3", out)
        self.assertIn("Ciphersuite: TLS_AES_128_GCM_SHA256", out)
        self.assertIn("CONNECTION CLOSED", out)
        self.assertEqual(
            client.negotiated, ("TLSv1.3", "TLS_AES_128_GCM_SHA256", b"tlsfast-test")
        )

    async def test_tls12(self):
        """
        With s_server limited to TLS 1.2 and one suite, our client negotiates
        exactly that.
        """
        server, portNumber = await self.sServer(
            "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"
        )
        client, out = await self.exchange(server, portNumber, clientOptions())
        self.assertIn("Protocol version: TLSv1.2", out)
        self.assertIn("Ciphersuite: ECDHE-ECDSA-CHACHA20-POLY1305", out)
        self.assertEqual(
            client.negotiated, ("TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305", None)
        )


parametrize(OpenSSLServerMixin, globals(), "OpenSSLServerTests")


BODY = b"hello from twisted.web\n"


class TinyHTTP(LineReceiver):
    """
    A minimal HTTP/1.1 responder whose factory offers no ALPN protocols (not
    an IProtocolNegotiationFactory, unlike twisted.web's Site).
    """

    def lineReceived(self, line):
        if line == b"":
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
            )
            self.transport.loseConnection()


class CurlMixin:
    """`curl` against Twisted HTTPS servers on 127.0.0.1 (as example.com)."""

    def listen(self, factory):
        # The context is built now, after setUp's install() when tlsfast runs.
        port = reactor().listenSSL(0, factory, serverOptions(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def site(self):
        root = Resource()
        root.putChild(b"", Data(BODY, "text/plain"))
        return Site(root)

    async def curl(self, portNumber, *extra):
        requireTool("curl")
        pems = writePEMs(self)
        return await run(
            ["curl", "-sS", "-v", "--max-time", "20", "--cacert", pems.ca,
             "--resolve", f"example.com:{portNumber}:127.0.0.1",
             "-w", "\nhttp_version=%{http_version}\n", *extra,
             f"https://example.com:{portNumber}/"],
        )

    def assertBody(self, result, version="1.1"):
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, BODY.decode() + f"\nhttp_version={version}\n")

    async def test_site(self):
        """
        A twisted.web Site offers its protocols over ALPN itself: h2 and
        http/1.1 when h2 is installed (the test extras install it), else
        http/1.1.  curl (offering h2 and http/1.1) gets the page over the
        best of them.
        """
        from twisted.web.http import H2_ENABLED

        portNumber = self.listen(self.site())
        result = await self.curl(portNumber)
        self.assertBody(result, "2" if H2_ENABLED else "1.1")
        self.assertIn(f"ALPN: server accepted {'h2' if H2_ENABLED else 'http/1.1'}", result.stderr)
        self.assertIn("SSL certificate verify ok", result.stderr)

    async def test_siteHTTP11(self):
        """
        The same with curl --http1.1 (which offers only http/1.1).
        """
        portNumber = self.listen(self.site())
        result = await self.curl(portNumber, "--http1.1")
        self.assertBody(result)
        self.assertIn("ALPN: offers http/1.1", result.stderr)
        self.assertNotIn("ALPN: offers h2", result.stderr)
        self.assertIn("ALPN: server accepted http/1.1", result.stderr)

    async def test_noALPNServerNoALPNClient(self):
        """
        curl --no-alpn against a server configured without ALPN works on both
        stacks.
        """
        portNumber = self.listen(Factory.forProtocol(TinyHTTP))
        result = await self.curl(portNumber, "--no-alpn")
        self.assertBody(result)

    async def test_noALPNServer(self):
        """
        Plain curl (offering h2, http/1.1) against a server configured
        without ALPN: stock Twisted's ALPN callback answers b"" and the
        handshake dies with an internal_error alert (curl exit 35);
        tlsfast.twisted.install() fixes it and curl gets the page with no
        protocol negotiated.
        """
        portNumber = self.listen(Factory.forProtocol(TinyHTTP))
        for extra in ((), ("--http1.1",)):
            result = await self.curl(portNumber, *extra)
            if self.tlsfastInstalled:
                self.assertBody(result)
                self.assertIn("ALPN: server did not agree", result.stderr)
            else:
                self.assertEqual(result.returncode, 35, result.stderr)
                self.assertIn("tlsv1 alert internal error", result.stderr)
                self.assertEqual(result.stdout, "\nhttp_version=0\n")


parametrize(CurlMixin, globals(), "CurlTests")

