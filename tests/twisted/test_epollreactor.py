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
