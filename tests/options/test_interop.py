"""
tlsfast.options against independent TLS stacks over 127.0.0.1: `openssl
s_client` / `s_server` (system OpenSSL 3.0) and `curl`, with Twisted stock
and with tlsfast installed.
"""

from __future__ import annotations

from twisted.internet.endpoints import SSL4ClientEndpoint
from twisted.internet.error import ConnectionDone
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from tests.options.test_twisted import InfoEcho, LoopbackMixin, serverOptions
from tests.twisted.processhelpers import run, writePEMs
from tests.twisted.test_interop import OpenSSLServerMixin, requireTool
from tests.twisted.tlshelpers import Recorder, RecordingFactory, parametrize
from tlsfast.options import ClientOptions, connectionInfo

BODY = b"hello from tlsfast.options\n"


def reactor():
    from twisted.internet import reactor as globalReactor

    return globalReactor


class EchoOnce(InfoEcho):
    """Echoes the first chunk, then closes (close_notify): s_client exits."""

    def dataReceived(self, data):
        InfoEcho.dataReceived(self, data)
        self.transport.loseConnection()


class SClientMixin(LoopbackMixin):
    def listen(self, options, protocol=EchoOnce):
        return LoopbackMixin.listen(self, options, protocol)

    async def sClient(self, portNumber, *extra):
        requireTool("openssl")
        pems = writePEMs(self)
        result = await run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{portNumber}",
             "-servername", "example.com", "-CAfile", pems.ca, "-verify_return_error",
             "-verify_hostname", "example.com", *extra],
            input=b"hello\n",
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result

    async def test_alpnAndGroup(self):
        """
        s_client (which knows no ML-KEM) gets X25519, the ALPN protocol we
        prefer, and its line echoed.
        """
        server, portNumber = self.listen(serverOptions(acceptableProtocols=[b"h2", b"http/1.1"]))
        result = await self.sClient(portNumber, "-alpn", "http/1.1,h2", "-ign_eof")
        self.assertIn("ALPN protocol: h2", result.stdout)
        self.assertIn("Verify return code: 0 (ok)", result.stdout)
        self.assertIn("hello\n", result.stdout)
        [connection] = server.instances
        await connection.lost
        self.assertEqual(connection.info.group, "x25519")
        self.assertEqual(connection.info.alpn, b"h2")

    async def test_noALPNServerAcceptsALPNClient(self):
        server, portNumber = self.listen(serverOptions())
        result = await self.sClient(portNumber, "-alpn", "h2")
        self.assertIn("No ALPN negotiated", result.stdout)

    async def test_alpnMismatchFails(self):
        requireTool("openssl")
        server, portNumber = self.listen(serverOptions(acceptableProtocols=[b"h2"]))
        pems = writePEMs(self)
        result = await run(["openssl", "s_client", "-connect", f"127.0.0.1:{portNumber}",
                            "-CAfile", pems.ca, "-alpn", "http/1.1"], input=b"")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("alert", result.stderr + result.stdout)

    async def test_resumptionAndKeyLog(self):
        """
        s_client resumes with our server (its -sess_out/-sess_in), and the
        server's key log holds exactly the secrets s_client logged itself.
        """
        pems = writePEMs(self)
        ours = f"{pems.directory}/server-keys.log"
        theirs = f"{pems.directory}/client-keys.log"
        session = f"{pems.directory}/session.pem"
        server, portNumber = self.listen(serverOptions(keyLogFile=ours))
        for version in ("-tls1_3", "-tls1_2"):
            first = await self.sClient(portNumber, version, "-sess_out", session,
                                       "-keylogfile", theirs, "-ign_eof")
            self.assertIn("New, TLSv1.", first.stdout)
            second = await self.sClient(portNumber, version, "-sess_in", session,
                                        "-keylogfile", theirs, "-ign_eof")
            self.assertIn("Reused, TLSv1.", second.stdout)
        await server.instances[-1].lost
        self.assertEqual([p.info.resumed for p in server.instances], [False, True, False, True])

        def lines(path):
            with open(path) as f:
                return sorted(line for line in f.read().splitlines() if line and not line.startswith("#"))

        self.assertEqual(lines(ours), lines(theirs))
        labels = {line.split()[0] for line in lines(ours)}
        self.assertTrue({"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "EXPORTER_SECRET", "CLIENT_RANDOM"} <= labels)


parametrize(SClientMixin, globals(), "SClient")


class SServerMixin:
    async def sServer(self, *extra):
        # `openssl s_server -rev` on a free port, as the glue's interop tests run it.
        server, portNumber = await OpenSSLServerMixin.sServer(self, *extra)
        return server, portNumber, writePEMs(self)

    async def exchange(self, portNumber, options):
        endpoint = SSL4ClientEndpoint(reactor(), "127.0.0.1", portNumber, options)
        client = await endpoint.connect(RecordingFactory(Recorder))
        await client.handshake
        client.transport.write(b"hello\n")
        await client.waitFor(6)
        self.assertEqual(client.received, b"olleh\n")
        client.info = connectionInfo(client.transport)
        client.transport.loseConnection()
        await client.lost
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        return client

    async def test_verifiesAndNegotiates(self):
        server, portNumber, pems = await self.sServer("-alpn", "x-test", "-tls1_2")
        client = await self.exchange(portNumber, ClientOptions(
            "example.com", caFile=pems.ca, acceptableProtocols=[b"x-test"]))
        self.assertEqual((client.info.version, client.info.alpn), ("TLSv1.2", b"x-test"))
        self.assertEqual(await server.wait(), 0, server.output())

    async def test_clientCertificate(self):
        server, portNumber, pems = await self.sServer("-Verify", "1", "-CAfile", writePEMs(self).ca)
        await self.exchange(portNumber, ClientOptions(
            "example.com", caFile=pems.ca, clientCertificate=pems.clientCert,
            clientKey=pems.clientKey))
        self.assertEqual(await server.wait(), 0, server.output())
        self.assertIn("Peer certificate: CN = client.example.com", server.output())

    async def test_wrongHostnameRefused(self):
        server, portNumber, pems = await self.sServer()
        endpoint = SSL4ClientEndpoint(reactor(), "127.0.0.1", portNumber,
                                      ClientOptions("wrong.example.com", caFile=pems.ca))
        client = await endpoint.connect(RecordingFactory(Recorder))
        await client.lost
        self.assertFalse(client.completedHandshake)
        self.assertIn("wrong.example.com", str(client.reason.value))


parametrize(SServerMixin, globals(), "SServer")


class CurlMixin:
    def listen(self, options):
        root = Resource()
        root.putChild(b"", Data(BODY, "text/plain"))
        port = reactor().listenSSL(0, Site(root), options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    async def curl(self, portNumber, *extra):
        requireTool("curl")
        pems = writePEMs(self)
        return await run(
            ["curl", "-sS", "-v", "--max-time", "20", "--cacert", pems.ca,
             "--resolve", f"example.com:{portNumber}:127.0.0.1", *extra,
             f"https://example.com:{portNumber}/"],
        )

    async def test_noALPNConfigured(self):
        """curl offers h2 and http/1.1; a server with no ALPN still serves it."""
        result = await self.curl(self.listen(serverOptions()))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, BODY.decode())

    async def test_alpn(self):
        result = await self.curl(self.listen(serverOptions(acceptableProtocols=[b"http/1.1"])))
        self.assertEqual(result.stdout, BODY.decode())
        self.assertIn("ALPN: server accepted http/1.1", result.stderr)

    async def test_alpnMismatch(self):
        result = await self.curl(self.listen(serverOptions(acceptableProtocols=[b"h2"])), "--http1.1")
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(result.stdout, "")

    async def test_clientCertificate(self):
        pems = writePEMs(self)
        portNumber = self.listen(serverOptions(clientCertificate="required", caFile=pems.ca))
        refused = await self.curl(portNumber)
        self.assertNotEqual(refused.returncode, 0)
        accepted = await self.curl(portNumber, "--cert", pems.clientCert, "--key", pems.clientKey)
        self.assertEqual(accepted.stdout, BODY.decode(), accepted.stderr)


parametrize(CurlMixin, globals(), "Curl")
