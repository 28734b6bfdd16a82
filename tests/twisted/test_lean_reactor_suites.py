"""
Twisted's own reactor tests for time, system events, threads and TCP, run
against L{LeanEPollReactor}: its main loop skips C{runUntilCurrent} when
nothing is due, so the scheduler's behaviour (timed calls on time and in
order, cancellation, C{callFromThread}, C{stop} and the shutdown triggers)
is checked by Twisted's tests rather than by ours.
"""

from __future__ import annotations

import os

from twisted.internet.test import test_core, test_tcp, test_threads, test_time
from twisted.trial.unittest import SynchronousTestCase

from tlsfast._foreign import twistedepoll
from tlsfast.twisted import epollreactor

BUILDERS = (
    test_time.TimeTestsBuilder,
    test_core.SystemEventTestsBuilder,
    test_threads.ThreadTestsBuilder,
    test_tcp.TCPConnectionTestsBuilder,
    test_tcp.AbortConnectionTests,
)


def _leanCase(builder: type) -> type:
    class case(builder, SynchronousTestCase):  # type: ignore[misc,valid-type]  # Twisted's pattern (makeTestCaseClasses)
        reactorFactory = getattr(epollreactor, "LeanEPollReactor", None)
        if epollreactor.problems or reactorFactory is None:
            skip = "; ".join(epollreactor.problems) or "no epoll"

    case.__name__ = case.__qualname__ = f"{builder.__name__}_LeanEPollReactor"
    return case


for _builder in BUILDERS:
    _case = _leanCase(_builder)
    globals()[_case.__name__] = _case
del _builder, _case


class LeanMainLoopTests(SynchronousTestCase):
    def test_mainLoopIsTheLeanOne(self):
        """The suites above exercise the lean main loop, not Twisted's."""
        if not twistedepoll.MAINLOOP_SURFACE.usable:
            self.skipTest("; ".join(twistedepoll.MAINLOOP_SURFACE.problems))
        self.assertIs(epollreactor.LeanEPollReactor.mainLoop, twistedepoll.LeanEPollReactor._leanMainLoop)

    def test_cancelledCallsAreCompactedWhileNothingIsDue(self):
        """
        Cancelled calls leave the schedule even when no call becomes due
        (Twisted's loop compacts them on every turn), so a churn of
        cancelled timeouts cannot pile up.
        """
        if epollreactor.problems:
            self.skipTest("; ".join(epollreactor.problems))
        reactor = epollreactor.LeanEPollReactor()
        self.addCleanup(reactor._poller.close)
        far = [reactor.callLater(3600, lambda: None) for _ in range(100)]
        reactor.callLater(10, reactor.stop)
        seen = []

        def cancelAll():
            for call in far:
                call.cancel()
            # The next turn, when nothing is due (the stop is 10 s away):
            reactor.addReader(_Turn(reactor, lambda: seen.append(len(reactor._pendingTimedCalls)) or reactor.stop()))

        reactor.addReader(_Turn(reactor, cancelAll))  # the first turn, once the calls are scheduled
        reactor.run(installSignalHandlers=False)
        self.assertEqual(seen, [1])  # only the stop call is left


class _Turn:
    """A selectable that is readable at once: calls C{then} on its first read, then leaves."""

    def __init__(self, reactor, then):
        self.reactor, self.then = reactor, then
        self.r, self.w = os.pipe()
        os.write(self.w, b"x")

    def fileno(self):
        return self.r

    def logPrefix(self):
        return "Turn"

    def doRead(self):
        self.reactor.removeReader(self)
        os.close(self.r)
        os.close(self.w)
        self.then()

    def connectionLost(self, reason):
        pass
