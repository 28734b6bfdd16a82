"""
Large transfers, flow control, close races, DH parameters and TLS version
limits over real loopback TCP, each run against stock Twisted and with
tlsfast installed (see tlshelpers.parametrize).

Memory is measured as the growth of this process's resident set (sampled
from /proc/self/statm), which covers both ends of each connection: sender,
receiver and every buffer in between that is not the kernel's.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import os
import shutil
import tempfile

import pytest
from OpenSSL import SSL
from twisted.internet import defer, task
from twisted.internet.endpoints import SSL4ClientEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHandshakeListener, IPullProducer, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import (
    AcceptableCiphers,
    CertificateOptions,
    DiffieHellmanParameters,
    TLSVersion,
)
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SkipTest
from zope.interface import implementer

from tests import pki
from tests.twisted.processhelpers import run, writePEMs
from tests.twisted.tlshelpers import (
    Recorder,
    RecordingFactory,
    clientOptions,
    parametrize,
    privateCertificate,
    serverOptions,
)

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
GiB = 1024 * MiB
CHUNK = 64 * 1024

# Peak growth of the resident set allowed while gigabytes stream through:
# every buffer on the way is bounded by flow control far below this.
MEMORY_BOUND = 64 * MiB


def reactor():
    from twisted.internet import reactor as globalReactor

    return globalReactor


# -- memory ------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")

try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def residentBytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class PeakMemory:
    """
    Samples the resident set every few milliseconds (and whenever
    C{sample()} is called) and keeps the peak above the baseline taken at
    creation.
    """

    def __init__(self, testCase, interval=0.01):
        gc.collect()
        if _malloc_trim is not None:
            # Give memory freed by earlier tests back to the system, so that
            # growth here shows up in the resident set instead of being
            # served from free lists.
            _malloc_trim(0)
        self.baseline = residentBytes()
        self.peak = self.baseline
        self.loop = task.LoopingCall(self.sample)
        self.loop.start(interval)
        testCase.addCleanup(self.stop)

    def sample(self):
        self.peak = max(self.peak, residentBytes())

    def stop(self):
        if self.loop.running:
            self.loop.stop()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


# -- data streams -------------------------------------------------------------


class Stream:
    """
    C{total} bytes of pseudo-random data made chunk by chunk from a small
    random pool (never all in memory), with the sha256 of what was made.
    """

    def __init__(self, total):
        self.total = total
        self.made = 0
        self.digest = hashlib.sha256()
        self._pool = os.urandom(4 * MiB + CHUNK)
        self._offset = 0

    def next(self) -> bytes:
        size = min(CHUNK, self.total - self.made)
        chunk = self._pool[self._offset:self._offset + size]
        # Stepping by a prime keeps consecutive chunks different.
        self._offset = (self._offset + 65521) % (4 * MiB)
        self.digest.update(chunk)
        self.made += size
        return chunk

    @property
    def finished(self) -> bool:
        return self.made == self.total


@implementer(IPullProducer)
class PullSender:
    """
    A FileSender-like pull producer writing a L{Stream}: one chunk per
    C{resumeProducing}; C{done} fires after the last chunk.
    """

    def __init__(self, transport, stream, memory=None):
        self.transport = transport
        self.stream = stream
        self.memory = memory
        self.done = defer.Deferred()

    def start(self):
        self.transport.registerProducer(self, False)

    def resumeProducing(self):
        if self.done.called:
            return
        self.transport.write(self.stream.next())
        if self.memory is not None:
            self.memory.sample()
        if self.stream.finished:
            self.transport.unregisterProducer()
            self.done.callback(self)

    def stopProducing(self):
        if not self.done.called:
            self.done.errback(RuntimeError("stopped before the end"))


@implementer(IPushProducer)
class PushSender:
    """
    A streaming producer writing a L{Stream} as fast as the transport lets
    it: a batch of chunks per reactor turn until paused.  C{paused} fires at
    the first pause, C{done} after the last chunk.
    """

    def __init__(self, transport, stream, memory=None):
        self.transport = transport
        self.stream = stream
        self.memory = memory
        self.isPaused = False
        self.paused = defer.Deferred()
        self.done = defer.Deferred()
        self._call = None

    def start(self):
        self.transport.registerProducer(self, True)
        self._schedule()

    def _schedule(self):
        if self._call is None and not self.done.called:
            self._call = reactor().callLater(0, self._produce)

    def _produce(self):
        self._call = None
        for _ in range(16):
            if self.isPaused or self.stream.finished:
                break
            self.transport.write(self.stream.next())
        if self.memory is not None:
            self.memory.sample()
        if self.stream.finished:
            self.transport.unregisterProducer()
            self.done.callback(self)
        elif not self.isPaused:
            self._schedule()

    def pauseProducing(self):
        self.isPaused = True
        if not self.paused.called:
            self.paused.callback(self)

    def resumeProducing(self):
        self.isPaused = False
        self._schedule()

    def stopProducing(self):
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if not self.done.called:
            self.done.errback(RuntimeError("stopped before the end"))


@implementer(IHandshakeListener)
class Digester(Protocol):
    """
    Hashes what it receives and keeps nothing else; C{waitFor(n)} fires
    once n bytes have arrived.
    """

    def __init__(self):
        self.digest = hashlib.sha256()
        self.length = 0
        self.handshake = defer.Deferred()
        self.lost = defer.Deferred()
        self.reason = None
        self._waiting = None

    def connectionMade(self):
        connected = self.factory.connected
        if not connected.called:
            connected.callback(self)

    def handshakeCompleted(self):
        self.handshake.callback(self)

    def dataReceived(self, data):
        self.digest.update(data)
        self.length += len(data)
        if self._waiting is not None and self.length >= self._waiting[0]:
            d, self._waiting = self._waiting[1], None
            d.callback(self)

    def waitFor(self, length):
        if self.length >= length:
            return defer.succeed(self)
        d = defer.Deferred()
        self._waiting = (length, d)
        return d

    def connectionLost(self, reason):
        self.reason = reason
        if not self.handshake.called:
            self.handshake.errback(reason)
            self.handshake.addErrback(lambda _: None)
        if self._waiting is not None:
            d, self._waiting = self._waiting[1], None
            d.errback(reason)
        self.lost.callback(None)


@implementer(IPushProducer)
class FlowControlledEcho(Digester):
    """
    Echoes everything, and stops reading while its own writes are
    backed up (it is its transport's producer), so an echo of any size
    needs bounded memory.
    """

    def connectionMade(self):
        Digester.connectionMade(self)
        self.transport.registerProducer(self, True)

    def dataReceived(self, data):
        Digester.dataReceived(self, data)
        self.transport.write(data)

    def pauseProducing(self):
        self.transport.pauseProducing()

    def resumeProducing(self):
        self.transport.resumeProducing()

    def stopProducing(self):
        pass


class PausedReader(Digester):
    """Stops reading as soon as its handshake is complete."""

    def handshakeCompleted(self):
        self.transport.pauseProducing()
        Digester.handshakeCompleted(self)


# -- tests --------------------------------------------------------------------


class ConnectionMixin:
    def listen(self, protocol, options=None):
        server = RecordingFactory(protocol)
        port = reactor().listenSSL(
            0, server, options or serverOptions(), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        return server, port.getHost().port

    async def connect(self, portNumber, protocol=Digester, options=None):
        endpoint = SSL4ClientEndpoint(
            reactor(), "127.0.0.1", portNumber, options or clientOptions()
        )
        factory = RecordingFactory(protocol)
        return await endpoint.connect(factory)

    async def closeAll(self, client, *others):
        client.transport.loseConnection()
        await defer.gatherResults([p.lost for p in (client,) + others])


class LargeMixin(ConnectionMixin):
    """
    The full sizes the issue asks for (200 MiB echo, 1 GiB paused stream)
    for both stacks: each test takes a few seconds even with stock Twisted.
    """

    timeout = 300
    ECHO_TOTAL = 200 * MiB
    PAUSED_TOTAL = 1 * GiB

    async def test_echo200MiB(self):
        """
        A pull producer streams 200 MiB to a flow-controlled echo server and
        the client reads it all back: the sha256 of what was sent, what the
        server saw and what came back agree, and the process's resident set
        never grows by more than MEMORY_BOUND.
        """
        total = self.ECHO_TOTAL
        server, portNumber = self.listen(FlowControlledEcho)
        client = await self.connect(portNumber)
        await client.handshake
        stream = Stream(total)  # its pool is part of the baseline
        memory = PeakMemory(self)
        sender = PullSender(client.transport, stream, memory)
        sender.start()
        await sender.done
        await client.waitFor(total)
        memory.stop()
        serverSide = server.instances[0]
        expected = sender.stream.digest.hexdigest()
        self.assertEqual((serverSide.length, client.length), (total, total))
        self.assertEqual(serverSide.digest.hexdigest(), expected)
        self.assertEqual(client.digest.hexdigest(), expected)
        self.assertLess(memory.growth, MEMORY_BOUND, f"grew {memory.growth / MiB:.1f} MiB")
        await self.closeAll(client, serverSide)
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        self.assertTrue(serverSide.reason.check(ConnectionDone), serverSide.reason)

    async def test_pausedReader1GiB(self):
        """
        The server stops reading right after the handshake while the client
        offers 1 GiB through a push producer: backpressure pauses the
        client's producer, which stays paused with only buffers' worth of
        data written, and memory stays bounded.  Once the server resumes,
        everything arrives intact, memory still bounded.
        """
        total = self.PAUSED_TOTAL
        server, portNumber = self.listen(PausedReader)
        client = await self.connect(portNumber)
        await client.handshake
        stream = Stream(total)
        memory = PeakMemory(self)
        sender = PushSender(client.transport, stream, memory)
        sender.start()

        first = await defer.DeferredList(
            [sender.paused, sender.done], fireOnOneCallback=True, fireOnOneErrback=True,
            consumeErrors=True,
        )
        self.assertIs(first[0], sender, "the producer was never paused")
        self.assertFalse(sender.done.called, "all data written without a pause")
        # Let the stall settle (kernel buffers fill, Twisted's buffers fill):
        # then the producer must be paused and only buffers' worth written.
        serverSide = server.instances[0]
        for _ in range(5):
            await task.deferLater(reactor(), 0.1, lambda: None)
            memory.sample()
        self.assertTrue(sender.isPaused)
        inFlight = sender.stream.made - serverSide.length
        self.assertLess(inFlight, MEMORY_BOUND, f"{inFlight / MiB:.1f} MiB in flight")
        self.assertLess(sender.stream.made, total)
        self.assertLess(memory.growth, MEMORY_BOUND, f"grew {memory.growth / MiB:.1f} MiB")

        serverSide.transport.resumeProducing()
        await sender.done
        await serverSide.waitFor(total)
        memory.stop()
        self.assertEqual(serverSide.length, total)
        self.assertEqual(serverSide.digest.hexdigest(), sender.stream.digest.hexdigest())
        self.assertLess(memory.growth, MEMORY_BOUND, f"grew {memory.growth / MiB:.1f} MiB")
        await self.closeAll(client, serverSide)
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        self.assertTrue(serverSide.reason.check(ConnectionDone), serverSide.reason)


parametrize(LargeMixin, globals(), "LargeTests")


class CloseRaceMixin(ConnectionMixin):
    """
    close_notify races: both sides act in the same reactor turn.  Data
    written before loseConnection is never lost and both sides see a clean
    close (ConnectionDone).
    """

    async def established(self):
        server, portNumber = self.listen(Recorder)
        client = await self.connect(portNumber, Recorder)
        client.transport.write(b"ready")
        serverSide = await server.connected
        await serverSide.waitFor(5)
        return client, serverSide

    def assertCleanlyClosed(self, *protocols):
        for protocol in protocols:
            self.assertTrue(protocol.reason.check(ConnectionDone), protocol.reason)

    async def test_bothClose(self):
        """
        Both sides call loseConnection at the same moment.
        """
        client, serverSide = await self.established()
        client.transport.loseConnection()
        serverSide.transport.loseConnection()
        await defer.gatherResults([client.lost, serverSide.lost])
        self.assertCleanlyClosed(client, serverSide)
        self.assertEqual(serverSide.received, b"ready")
        self.assertEqual(client.received, b"")

    async def test_writeCloseWhilePeerWrites(self):
        """
        The client writes 1 MiB and calls loseConnection at once, while the
        server writes 1 MiB of its own: each side receives everything the
        other wrote (the client keeps reading after sending close_notify),
        then both close cleanly.
        """
        client, serverSide = await self.established()
        toServer, toClient = os.urandom(MiB), os.urandom(MiB)
        client.transport.write(toServer)
        client.transport.loseConnection()
        serverSide.transport.write(toClient)
        await defer.gatherResults([client.lost, serverSide.lost])
        self.assertCleanlyClosed(client, serverSide)
        self.assertEqual(serverSide.received, b"ready" + toServer)
        self.assertEqual(client.received, toClient)

    async def test_bothWriteAndClose(self):
        """
        Both sides write 1 MiB and call loseConnection in the same turn:
        both streams arrive whole and both sides close cleanly.
        """
        client, serverSide = await self.established()
        toServer, toClient = os.urandom(MiB), os.urandom(MiB)
        client.transport.write(toServer)
        serverSide.transport.write(toClient)
        client.transport.loseConnection()
        serverSide.transport.loseConnection()
        await defer.gatherResults([client.lost, serverSide.lost])
        self.assertCleanlyClosed(client, serverSide)
        self.assertEqual(serverSide.received, b"ready" + toServer)
        self.assertEqual(client.received, toClient)


parametrize(CloseRaceMixin, globals(), "CloseRaceTests")


# RFC 7919 ffdhe3072 (`openssl genpkey -genparam -algorithm DH -pkeyopt
# group:ffdhe3072`): standard, so nothing to generate per run.  Not 2048
# bits, so that it cannot be mistaken for the group OpenSSL picks by itself
# for a 2048-bit RSA key when no parameters are configured.
FFDHE3072 = b"""\
-----BEGIN DH PARAMETERS-----
MIIBiAKCAYEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEfz9zeNVs7ZRkDW7w09N75nAI4YbRvydbmyQd62R0mkff3
7lmMsPrBhtkcrv4TCYUTknC0EwyTvEN5RPT9RFLi103TZPLiHnH1S/9croKrnJ32
nuhtK8UiNjoNq8Uhl5sN6todv5pC1cRITgq80Gv6U93vPBsg7j/VnXwl5B0rZsYu
N///////////AgEC
-----END DH PARAMETERS-----
"""

DHE_SUITE = "DHE-RSA-AES128-GCM-SHA256"


class NegotiationMixin(ConnectionMixin):
    """DH parameters for DHE suites, and TLS version limits."""

    def rsaServerOptions(self, **kwargs):
        # DHE suites authenticate with RSA: an RSA leaf from the test CA.
        certificate = privateCertificate(pki.leaf("rsa", names=("example.com",)))
        return CertificateOptions(
            privateKey=certificate.privateKey.original,
            certificate=certificate.original,
            **kwargs,
        )

    def dhParameters(self):
        directory = tempfile.mkdtemp(prefix="tlsfast-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = FilePath(directory).child("ffdhe3072.pem")
        path.setContent(FFDHE3072)
        return DiffieHellmanParameters.fromFile(path)

    def dheOnlyClient(self):
        return clientOptions(
            extraCertificateOptions=dict(
                lowerMaximumSecurityTo=TLSVersion.TLSv1_2,
                acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(DHE_SUITE),
            )
        )

    async def negotiate(self, serverOptions_, clientOptions_):
        """
        Connect, exchange a few bytes and close; return what each side
        negotiated as (version, cipher), or the failures.
        """
        server, portNumber = self.listen(Recorder, serverOptions_)
        client = await self.connect(portNumber, Recorder, clientOptions_)
        client.transport.write(b"hello")
        serverSide = await server.connected
        try:
            await client.handshake
            await serverSide.waitFor(5)
        except Exception:  # noqa: BLE001 - any handshake failure: the test compares both sides' reasons
            await defer.gatherResults([client.lost, serverSide.lost])
            return None, (client.reason, serverSide.reason)
        negotiated = []
        for side in (client, serverSide):
            handle = side.transport.getHandle()
            negotiated.append((handle.get_protocol_version_name(), handle.get_cipher_name()))
        await self.closeAll(client, serverSide)
        self.assertEqual(serverSide.received, b"hello")
        return negotiated, None

    async def sClientDHE(self, options):
        """
        Run `openssl s_client` (system OpenSSL 3.0), offering only TLS 1.2
        and the DHE suite, against a server using C{options}; return its
        result and the server side's protocol.
        """
        if shutil.which("openssl") is None:
            raise SkipTest("openssl not installed")
        pems = writePEMs(self)
        server, portNumber = self.listen(Recorder, options)
        result = await run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{portNumber}",
             "-servername", "example.com", "-CAfile", pems.ca, "-verify_return_error",
             "-tls1_2", "-cipher", DHE_SUITE],
        )
        serverSide = server.instances[0]
        await serverSide.lost
        return result, serverSide

    async def test_dhParameters(self):
        """
        With ffdhe3072 parameters loaded from a file, a TLS 1.2 client that
        accepts only a DHE suite negotiates it (both sides agree), and the
        server's ephemeral key uses those parameters (as `openssl s_client`
        reports).
        """
        options = self.rsaServerOptions(dhParameters=self.dhParameters())
        negotiated, failures = await self.negotiate(options, self.dheOnlyClient())
        self.assertIsNone(failures)
        self.assertEqual(negotiated, [("TLSv1.2", DHE_SUITE)] * 2)
        result, serverSide = await self.sClientDHE(options)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"New, TLSv1.2, Cipher is {DHE_SUITE}", result.stdout)
        self.assertIn("Server Temp Key: DH, 3072 bits", result.stdout)
        self.assertTrue(serverSide.reason.check(ConnectionDone), serverSide.reason)

    async def test_withoutDHParameters(self):
        """
        Without DH parameters, a DHE-only `openssl s_client` (OpenSSL 3.0,
        which does not negotiate RFC 7919 groups for TLS 1.2) is refused with
        a handshake_failure alert: the parameters are what enabled DHE.
        """
        result, serverSide = await self.sClientDHE(self.rsaServerOptions())
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("alert handshake failure", result.stderr)
        self.assertIn("Cipher is (NONE)", result.stdout)
        self.assertTrue(serverSide.reason.check(SSL.Error), serverSide.reason)

    async def test_versionMismatch(self):
        """
        A client limited to TLS 1.2 against a server that requires TLS 1.3:
        both sides fail with OpenSSL.SSL.Error and nothing is delivered.
        """
        negotiated, failures = await self.negotiate(
            serverOptions(raiseMinimumTo=TLSVersion.TLSv1_3),
            clientOptions(
                extraCertificateOptions=dict(lowerMaximumSecurityTo=TLSVersion.TLSv1_2)
            ),
        )
        self.assertIsNone(negotiated)
        clientReason, serverReason = failures
        self.assertTrue(clientReason.check(SSL.Error), clientReason)
        self.assertTrue(serverReason.check(SSL.Error), serverReason)
        self.assertIn("protocol", str(serverReason.value))

    async def test_serverLimitedToTLS12(self):
        """
        A server allowing only TLS 1.2 (insecurelyLowerMinimumTo and
        lowerMaximumSecurityTo) and a default client negotiate TLS 1.2.
        """
        negotiated, failures = await self.negotiate(
            serverOptions(
                insecurelyLowerMinimumTo=TLSVersion.TLSv1_2,
                lowerMaximumSecurityTo=TLSVersion.TLSv1_2,
            ),
            clientOptions(),
        )
        self.assertIsNone(failures)
        self.assertEqual([version for version, _ in negotiated], ["TLSv1.2"] * 2)

    async def test_bothRequireTLS13(self):
        """
        Both sides raising the minimum to TLS 1.3 negotiate TLS 1.3.
        """
        negotiated, failures = await self.negotiate(
            serverOptions(raiseMinimumTo=TLSVersion.TLSv1_3),
            clientOptions(extraCertificateOptions=dict(raiseMinimumTo=TLSVersion.TLSv1_3)),
        )
        self.assertIsNone(failures)
        self.assertEqual([version for version, _ in negotiated], ["TLSv1.3"] * 2)


parametrize(NegotiationMixin, globals(), "NegotiationTests")
