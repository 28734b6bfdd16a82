"""
The lean epoll reactor for every tlsfast Twisted user
(L{tlsfast.twisted.epollreactor}): installed like Twisted's own, it
dispatches ready descriptors, keeps the loop going past an escaping
exception, and runs tlsfast's TLS.
"""

from __future__ import annotations

import os

from twisted.python import log
from twisted.trial.unittest import SynchronousTestCase

from tests.twisted.test_install import runPython
from tlsfast.twisted import epollreactor


class PipeReader:
    """A readable end of a pipe as a reactor selectable (a handler can be made to fail)."""

    def __init__(self, fd, fail=False):
        self.fd, self.fail, self.reads, self.lost = fd, fail, 0, None

    def fileno(self):
        return self.fd

    def logPrefix(self):
        return "PipeReader"

    def doRead(self):
        os.read(self.fd, 100)
        self.reads += 1
        if self.fail:
            raise ValueError("bug in a handler")

    def connectionLost(self, reason):
        self.lost = reason


class LeanEPollReactorTests(SynchronousTestCase):
    def setUp(self):
        if epollreactor.problems:
            self.skipTest("; ".join(epollreactor.problems))
        self.fds = []
        self.addCleanup(lambda: [os.close(fd) for fd in self.fds])  # last: after the reactor let go
        self.reactor = epollreactor.LeanEPollReactor()
        self.addCleanup(self.reactor._poller.close)
        self.addCleanup(self.reactor.removeAll)

    def pipe(self):
        r, w = os.pipe()
        self.fds += [r, w]
        return r, w

    def test_dispatchesReadyDescriptors(self):
        (r1, w1), (r2, w2) = self.pipe(), self.pipe()
        bad, good = PipeReader(r1, fail=True), PipeReader(r2)
        self.reactor.addReader(bad)
        self.reactor.addReader(good)
        os.write(w1, b"x")
        os.write(w2, b"x")
        self.reactor.doPoll(1)
        self.assertEqual((bad.reads, good.reads), (1, 1))
        # Twisted's _doReadOrWrite disconnected the failing one with its error.
        self.assertTrue(bad.lost.check(ValueError))
        self.flushLoggedErrors(ValueError)
        self.reactor.doPoll(0)
        self.assertEqual(good.reads, 1)

    def test_noLogContextPerEvent(self):
        """Events go straight to their handler (Twisted's: through log.callWithLogger)."""
        r, w = self.pipe()
        reader = PipeReader(r)
        self.reactor.addReader(reader)
        contexts = []
        self.patch(log, "callWithLogger", lambda *args, **kwargs: contexts.append(args))
        os.write(w, b"x")
        self.reactor.doPoll(1)
        self.assertEqual((reader.reads, contexts), (1, []))


class SocketEndReader:
    """
    A selectable that reads through a compiled PlainRelay, the way
    twistedtcp.attachSocketEnd sets one up: C{doRead} is the relay's.
    """

    def __init__(self, sock, failOnData=False):
        from twisted.internet import main

        from tlsfast._engine import PlainRelay

        self.sock, self.failOnData = sock, failOnData
        self.received, self.lost, self.readLost = [], None, None
        self.relay = PlainRelay(self)
        self.relay.use_socket(self, sock.fileno(), 65536, (), (), "buffer", "offset",
                              main.CONNECTION_DONE, main.CONNECTION_LOST)
        self.doRead = self.relay.doRead
        self.buffer, self.offset = b"", 0

    def fileno(self):
        return self.sock.fileno()

    def logPrefix(self):
        return "SocketEndReader"

    def dataReceived(self, data):  # the relay's protocol, while it relays nowhere
        self.received.append(data)
        if self.failOnData:
            raise ValueError("bug in a handler")

    def connectionLost(self, reason):
        self.lost = reason


class CompiledDispatchTests(LeanEPollReactorTests):
    """Read events of compiled socket ends are dispatched in C, with Twisted's outcomes."""

    def setUp(self):
        super().setUp()
        from tlsfast._foreign import twistedepoll

        if twistedepoll.dispatchEvents is None:
            self.skipTest("the engine is not available")

    def socketPair(self):
        import socket

        a, b = socket.socketpair()
        a.setblocking(False)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def test_readsInCWithoutTheReactorsDispatch(self):
        a, b = self.socketPair()
        reader = SocketEndReader(a)
        self.reactor.addReader(reader)
        self.addCleanup(self.reactor.removeReader, reader)  # before the sockets close
        calls = []
        self.patch(self.reactor, "_doReadOrWrite", lambda *args: calls.append(args))
        b.sendall(b"hello")
        self.reactor.doPoll(1)
        self.assertEqual((reader.received, calls), ([b"hello"], []))

    def test_otherSelectablesGoToTheReactorsDispatch(self):
        r, w = self.pipe()
        reader = PipeReader(r)
        self.reactor.addReader(reader)
        os.write(w, b"x")
        self.reactor.doPoll(1)
        self.assertEqual(reader.reads, 1)

    def test_endOfFileDisconnectsAsTwistedDoes(self):
        from twisted.internet.error import ConnectionDone

        a, b = self.socketPair()
        reader = SocketEndReader(a)
        self.reactor.addReader(reader)
        b.close()
        self.reactor.doPoll(1)
        self.assertTrue(reader.lost.check(ConnectionDone), reader.lost)
        self.assertNotIn(reader, self.reactor.getReaders())

    def test_failingHandlerIsLoggedAndDisconnected(self):
        a, b = self.socketPair()
        (r, w), good = self.pipe(), None
        bad = SocketEndReader(a, failOnData=True)
        good = PipeReader(r)
        self.reactor.addReader(bad)
        self.reactor.addReader(good)
        b.sendall(b"x")
        os.write(w, b"x")
        self.reactor.doPoll(1)
        self.assertTrue(bad.lost.check(ValueError), bad.lost)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(good.reads, 1)  # the next event was still dispatched


class InstallTests(SynchronousTestCase):
    def test_installThenTLSEcho(self):
        if epollreactor.problems:
            self.skipTest("; ".join(epollreactor.problems))
        result = runPython("""
            from tlsfast.twisted import epollreactor
            assert epollreactor.install()
            assert not epollreactor.install()  # a reactor is installed now
            from twisted.internet import reactor
            assert type(reactor) is epollreactor.LeanEPollReactor, reactor

            import tlsfast.twisted
            from twisted.internet.endpoints import SSL4ClientEndpoint
            from tests.twisted.tlshelpers import Echo, Recorder, RecordingFactory, clientOptions, serverOptions
            assert tlsfast.twisted.install()
            port = reactor.listenSSL(0, RecordingFactory(Echo), serverOptions(), interface="127.0.0.1")

            async def main():
                endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port, clientOptions())
                client = await endpoint.connect(RecordingFactory(Recorder))
                client.transport.write(b"hello" * 10000)
                await client.waitFor(50000)
                assert client.received == b"hello" * 10000
                print("ok")

            from twisted.internet.defer import ensureDeferred
            d = ensureDeferred(main())
            d.addErrback(lambda f: print(f.getTraceback()))
            d.addBoth(lambda _: reactor.stop())
            reactor.run()
            """)
        self.assertEqual(result.stdout.strip(), "ok", result.stdout + result.stderr)
