# -*- test-case-name: tests.twisted.test_epollreactor -*-
"""
Twisted's epoll reactor minus the legacy log context around every I/O event.

For each ready descriptor Twisted's C{doPoll} calls
C{log.callWithLogger(selectable, ...)}: it asks the selectable for its
C{logPrefix()}, builds a context dictionary, copies the context stack and
calls through four Python frames, so that legacy C{log.msg} calls made during
the event carry a C{system} prefix.  Software that logs through
C{twisted.logger} (or its own logger) has no use for that prefix, and at one
to three events per message it is a measurable share of the per-message cost.
L{LeanEPollReactor} dispatches straight to C{_doReadOrWrite} and keeps the
safety net: an exception escaping an event is logged (C{log.err}) and the
loop goes on.  The only visible difference is the missing C{system} prefix,
so it is opt-in (L{tlsfast.twisted.epollreactor.install}).

Private surface: C{EPollReactor._poller}, C{_selectables} (set in its
C{__init__}) and C{_doReadOrWrite(selectable, fd, event)}.  L{SURFACE}
checks them; when it fails (or there is no epoll) Twisted's reactor is used.

Between events Twisted's C{mainLoop} runs C{runUntilCurrent} and
C{timeout} on every turn, about seven Python frames even when no timed call
is due and no thread has queued one.  The lean reactor's main loop calls
C{runUntilCurrent} only when it has something to do, and works the poll
timeout out inline, as C{timeout} does.  It reads the scheduler's private
lists, which L{MAINLOOP_SURFACE} checks; when that fails the lean reactor
keeps Twisted's C{mainLoop}.
"""

from __future__ import annotations

import errno
import sys
from select import EPOLLIN
from typing import Any

from twisted.internet import base
from twisted.python import log

from tlsfast import ACCELERATED
from tlsfast._foreign import TWISTED_TESTED, Surface, missingAssignments, missingParameters

try:
    from twisted.internet.epollreactor import EPollReactor
except ImportError:  # not Linux
    EPollReactor = None  # type: ignore[assignment,misc]  # no epoll: Twisted's default reactor is used



def check() -> Surface:
    """Check the names this module uses (at import: L{SURFACE})."""
    if EPollReactor is None:
        return Surface("EPollReactor dispatch", "Twisted", TWISTED_TESTED, ["no epoll on this platform"])
    return Surface("EPollReactor dispatch", "Twisted", TWISTED_TESTED).require(
        missingAssignments(EPollReactor.__init__, ("_poller", "_selectables")),
        missingParameters(EPollReactor, "_doReadOrWrite", ("self", "selectable", "fd", "event")),
        missingParameters(EPollReactor, "doPoll", ("self", "timeout")),
        missingParameters(EPollReactor, "_disconnectSelectable", ("self", "selectable", "why", "isRead", "faildict")),
    )


# What ReactorBase.runUntilCurrent has to do besides running due calls
# (_insertNewDelayedCalls, thread calls, the shutdown event, compaction).
_SCHEDULER_STATE = ("threadCallQueue", "_pendingTimedCalls", "_newTimedCalls", "_cancellations",
                    "running", "_started", "_justStopped")


def checkMainLoop() -> Surface:
    """Check the names L{LeanEPollReactor.mainLoop} uses (at import: L{MAINLOOP_SURFACE})."""
    if EPollReactor is None:
        return Surface("ReactorBase main loop", "Twisted", TWISTED_TESTED, ["no epoll on this platform"])
    return Surface("ReactorBase main loop", "Twisted", TWISTED_TESTED).require(
        missingAssignments(base.ReactorBase.__init__, _SCHEDULER_STATE),
        missingParameters(base.ReactorBase, "runUntilCurrent", ("self",)),
        missingParameters(base.ReactorBase, "mainLoop", ("self",)),
        missingParameters(base.ReactorBase, "_insertNewDelayedCalls", ("self",)),
        [f"twisted.internet.base has no {name}" for name in ("_topHandler", "_log") if not hasattr(base, name)],
    )


SURFACE = check()
MAINLOOP_SURFACE = checkMainLoop()
MORE_SURFACES = ("MAINLOOP_SURFACE",)  # (for tlsfast info, through surfaces())

# Twisted's timeout() ceiling: epoll_wait takes int milliseconds.
_LONGEST_WAIT = 2147483

# The compiled dispatch (reads of tlsfast's socket ends in C), where the engine loads.
dispatchEvents: Any = None
if ACCELERATED:
    from tlsfast._engine import dispatch_events as dispatchEvents


if EPollReactor is not None:
    class LeanEPollReactor(EPollReactor):
        """C{EPollReactor} dispatching I/O events without the legacy log context."""

        def doPoll(self, timeout: float | None) -> None:
            if timeout is None:
                timeout = -1  # wait indefinitely
            try:
                events = self._poller.poll(timeout, len(self._selectables))
            except OSError as e:
                if e.errno == errno.EINTR:
                    return
                raise
            if dispatchEvents is not None:
                dispatchEvents(events, self._selectables, EPOLLIN, self._dispatchOne,
                               self._readEnded, self._readRaised)
                return
            selectables = self._selectables
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is not None:
                    self._dispatchOne(selectable, fd, event)

        doIteration = doPoll

        def _leanMainLoop(self) -> None:
            """
            Twisted's C{mainLoop}, calling C{runUntilCurrent} only when a
            timed call is due or new, a thread call is queued, the reactor
            has just stopped or cancelled calls need compacting.
            """
            while self._started:
                with base._topHandler:
                    while self._started:
                        pending = self._pendingTimedCalls
                        now = self.seconds()
                        if (self._newTimedCalls or self.threadCallQueue or self._justStopped
                                or (pending and pending[0].time <= now)
                                or (self._cancellations > 50 and self._cancellations > len(pending) >> 1)):
                            self.runUntilCurrent()
                            pending = self._pendingTimedCalls
                            self._insertNewDelayedCalls()  # (as timeout() does)
                            now = self.seconds()
                        if not self.running:
                            timeout: float | None = 0
                        elif pending:
                            timeout = max(0, min(_LONGEST_WAIT, pending[0].time - now))
                        else:
                            timeout = None
                        self.doPoll(timeout)
            base._log.info("Main loop terminated.")

        if MAINLOOP_SURFACE.usable:
            mainLoop = _leanMainLoop

        def _guarded(self, selectable: Any, call: Any, *args: Any) -> None:
            """
            C{call(*args)} for an event of C{selectable}: an exception is
            logged and the loop goes on (as Twisted's C{callWithLogger}).
            """
            try:
                call(*args)
            except KeyboardInterrupt:
                raise
            except BaseException:  # noqa: BLE001 - as callWithLogger: report it, keep the loop going
                log.err(None, f"Unhandled error in I/O event handler of {selectable!r}")

        def _dispatchOne(self, selectable: Any, fd: int, event: int) -> None:
            self._guarded(selectable, self._doReadOrWrite, selectable, fd, event)

        def _readEnded(self, selectable: Any, why: BaseException) -> None:
            """A compiled doRead ended the connection (as C{_doReadOrWrite} goes on)."""
            self._guarded(selectable, self._disconnectSelectable, selectable, why, True)

        def _readRaised(self, selectable: Any) -> None:
            """A compiled doRead raised (called in its except block, as C{_doReadOrWrite} handles it)."""
            why = sys.exc_info()[1]
            log.err()
            if why is not None:
                self._readEnded(selectable, why)


def install(reactorClass: Any = None) -> bool:
    """
    Install a L{LeanEPollReactor} (or C{reactorClass}, a subclass) as the
    global reactor, if its surface is usable and no reactor has been chosen
    yet.  Returns whether it was installed.
    """
    if not SURFACE.usable or "twisted.internet.reactor" in sys.modules:
        return False
    from twisted.internet.main import installReactor

    installReactor((reactorClass or LeanEPollReactor)())
    return True
