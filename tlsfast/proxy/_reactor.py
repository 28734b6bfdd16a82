"""
The proxy's reactor: Twisted's epoll reactor minus the legacy log context
around every I/O event.

For each ready descriptor Twisted's C{doPoll} calls
C{log.callWithLogger(selectable, ...)}: it asks the selectable for its
C{logPrefix()}, builds a context dictionary, copies the context stack and
calls through four Python frames, so that legacy C{log.msg} calls made during
the event carry a C{system} prefix.  The proxy logs through its own logger
and keeps no use for that prefix; at one to three events per relayed message
it is a measurable share of the per-message cost.  L{ProxyReactor} dispatches
straight to C{_doReadOrWrite} and keeps the safety net: an exception escaping
an event is logged (through L{twisted.python.log}, which the proxy routes to
its log) and the loop goes on.

This leans on C{EPollReactor} internals (C{_poller}, C{_selectables},
C{_doReadOrWrite}); L{AVAILABLE} is false, and the proxy runs on Twisted's
default reactor, when they are not there.  C{TLSFAST_PROXY_REACTOR=twisted}
chooses Twisted's default reactor too (to compare, or as an escape hatch).
"""

from __future__ import annotations

import errno
import os
import sys

from twisted.python import log

try:
    from twisted.internet.epollreactor import EPollReactor
except ImportError:  # not Linux
    EPollReactor = None  # type: ignore[assignment,misc]  # no epoll: Twisted's default reactor is used


def _available() -> bool:
    if EPollReactor is None or os.environ.get("TLSFAST_PROXY_REACTOR", "proxy") == "twisted":
        return False
    code = EPollReactor.doPoll.__code__.co_names
    return all(name in code for name in ("_poller", "_selectables", "_doReadOrWrite", "callWithLogger"))


AVAILABLE = _available()


if EPollReactor is not None:
    class ProxyReactor(EPollReactor):
        """C{EPollReactor} dispatching I/O events without the legacy log context."""

        def doPoll(self, timeout):
            if timeout is None:
                timeout = -1  # wait indefinitely
            try:
                events = self._poller.poll(timeout, len(self._selectables))
            except OSError as e:
                if e.errno == errno.EINTR:
                    return
                raise
            selectables = self._selectables
            dispatch = self._doReadOrWrite
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is None:
                    continue
                try:
                    dispatch(selectable, fd, event)
                except KeyboardInterrupt:
                    raise
                except BaseException:  # noqa: BLE001 - as callWithLogger: report it, keep the loop going
                    log.err(None, f"Unhandled error in I/O event handler of {selectable!r}")

        doIteration = doPoll


def install() -> bool:
    """
    Install L{ProxyReactor} as the global reactor, if it is available and no
    reactor has been chosen yet.  Returns whether it was installed.
    """
    if not AVAILABLE or "twisted.internet.reactor" in sys.modules:
        return False
    from twisted.internet.main import installReactor

    installReactor(ProxyReactor())
    return True
