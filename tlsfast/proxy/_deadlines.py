"""
The deadlines of every connection on one timer per reactor.

Each phase of a relayed connection has its deadline (docs/proxy.md,
"Timeouts").  A C{reactor.callLater} each costs a L{DelayedCall}, its
insertion into the reactor's heap (ordered by C{DelayedCall.__lt__}, a
Python call per comparison) and its cancellation; a proxied connection used
to arm five.  Here a deadline is a L{Deadline}: arming pushes a tuple onto
one heap (compared in C), disarming clears an attribute, and one
C{DelayedCall} per reactor, the sweep, wakes for the earliest deadline.

Cancellation is lazy: a disarmed or re-armed deadline leaves its heap entry
behind, skipped when it comes out (or dropped by a compaction once more
than half the heap is such leftovers, so memory follows the armed count).
A deadline moved later keeps its earlier entry and is pushed again when
that one comes out: an idle timer pushed back by traffic costs nothing.

What it guarantees:

  - a deadline never expires before its time, and at most L{RESOLUTION}
    after it (the sweep after a sweep waits that long: under load, at most
    1 / RESOLUTION sweeps a second however many connections);
  - the sweep runs on the clock it is given (a test's C{Clock} included),
    and no timer is left on it when nothing is armed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import partial
from heapq import heapify, heappop, heappush
from typing import Any

from twisted.logger import Logger

#: Seconds a deadline may expire late: the least time between two sweeps.
RESOLUTION = 0.1

# Absolute times go through "now + (at - now)" in callLater: a deadline
# within this of the sweep's time is due, not a float rounding away.
_ROUNDING = 1e-9

# Compact the heap when its leftovers outnumber the armed deadlines by this much.
_SLACK = 64

_log = Logger()


class Deadline:
    """
    One deadline, armed and disarmed as often as needed.  When its time
    passes, C{expired()} is called, once per arming.  It is also an
    C{IDelayedCall} as far as L{Deadlines.callLater}'s users need
    (C{active}, C{cancel}, C{getTime}).
    """

    # (Arming and disarming are on every connection's path: written out
    # here rather than spread over helper calls.)
    __slots__ = ("_deadlines", "_entry", "_queuedAt", "at", "expired")

    def __init__(self, deadlines: Deadlines, expired: Callable[[], object]) -> None:
        self._deadlines = deadlines
        self.expired = expired
        self.at: float | None = None  # when it expires (clock time), None when disarmed
        self._entry: tuple[float, int, Deadline] | None = None  # its live heap entry ...
        self._queuedAt = 0.0  # ... and that entry's time

    def arm(self, at: float) -> None:
        """Expire at C{at} (clock time), instead of any time armed before."""
        deadlines = self._deadlines
        if self.at is None:
            deadlines.armed += 1
        self.at = at
        if self._entry is None or at < self._queuedAt:
            deadlines._pushed += 1
            self._entry = entry = (at, deadlines._pushed, self)
            self._queuedAt = at
            heappush(deadlines._heap, entry)
            if at < deadlines._sweepAt:
                deadlines._sweepBy(at)

    def disarm(self) -> None:
        """Do not expire (a no-op when not armed)."""
        if self.at is not None:
            self.at = None
            deadlines = self._deadlines
            deadlines.armed -= 1
            if not deadlines.armed:
                deadlines._clear()
            elif deadlines._pushed - deadlines._compactedAt > 2 * deadlines.armed + _SLACK:
                deadlines._compact()

    cancel = disarm

    def active(self) -> bool:
        return self.at is not None

    def getTime(self) -> float | None:
        return self.at


class Deadlines:
    """
    The deadlines on one clock (an C{IReactorTime}), expired by one sweep.
    Get the one of a reactor with L{deadlinesFor}.  It is also a clock with
    the coarse C{callLater} of L{Deadline}s, for code that takes an
    C{IReactorTime} for its timeouts (the TLS options' handshake timeout).
    """

    def __init__(self, clock: Any, resolution: float = RESOLUTION) -> None:
        self.clock = clock
        self.seconds: Callable[[], float] = clock.seconds
        self.resolution = resolution
        self._heap: list[tuple[float, int, Deadline]] = []
        self._pushed = 0  # entries pushed so far (their sequence numbers, for ties)
        self._compactedAt = 0  # ... as of the last compaction or clearing
        self.armed = 0  # deadlines armed now
        self._sweepCall: Any = None  # the clock's IDelayedCall for the next sweep
        self._sweepAt = float("inf")
        self._notBefore = float("-inf")  # the last sweep's time + resolution

    def callLater(self, delay: float, function: Callable[..., object], *args: object,
                  **kwargs: object) -> Deadline:
        """C{IReactorTime.callLater}, at this sweep's resolution."""
        deadline = Deadline(self, partial(function, *args, **kwargs) if args or kwargs else function)
        deadline.arm(self.seconds() + delay)
        return deadline

    def _clear(self) -> None:
        """Nothing armed: no entries, no timer left on the clock."""
        for _, _, deadline in self._heap:
            deadline._entry = None
        self._heap = []
        self._compactedAt = self._pushed
        if self._sweepCall is not None:
            self._sweepCall.cancel()
            self._sweepCall, self._sweepAt = None, float("inf")

    def _compact(self) -> None:
        """Drop the entries of deadlines disarmed or moved earlier since."""
        live = []
        for entry in self._heap:
            deadline = entry[2]
            if deadline._entry is entry:
                if deadline.at is None:
                    deadline._entry = None
                else:
                    live.append(entry)
        heapify(live)
        self._heap = live
        self._compactedAt = self._pushed - len(live)

    # -- the sweep ------------------------------------------------------------------

    def _sweepBy(self, at: float) -> None:
        """Have a sweep run by C{at}, or as soon after the last as the resolution allows."""
        if at < self._notBefore:
            at = self._notBefore
        if at < self._sweepAt:
            if self._sweepCall is not None:
                self._sweepCall.cancel()
            self._sweepAt = at
            self._sweepCall = self.clock.callLater(max(at - self.seconds(), 0.0), self._sweep)

    def _sweep(self) -> None:
        # -inf: arming during the sweep schedules nothing; the end of the sweep does, once.
        self._sweepCall, self._sweepAt = None, float("-inf")
        now = self.seconds()
        self._notBefore = now + self.resolution
        due = now + _ROUNDING
        try:
            while self._heap and self._heap[0][0] <= due:
                entry = heappop(self._heap)
                deadline = entry[2]
                if deadline._entry is not entry:
                    continue  # moved earlier since: a newer entry stands for it
                deadline._entry = None
                at = deadline.at
                if at is None:
                    continue  # disarmed
                if at > due:
                    deadline.at = None  # moved later since: armed again, for its new time
                    self.armed -= 1
                    deadline.arm(at)
                    continue
                deadline.at = None
                self.armed -= 1
                try:
                    deadline.expired()
                except Exception:  # noqa: BLE001 - as the reactor does for a DelayedCall: log it, go on with the others
                    _log.failure("a deadline's expiry failed")
        finally:
            self._sweepAt = float("inf")
            if not self.armed:
                self._clear()
            else:
                self._sweepBy(self._heap[0][0])


_byClock: weakref.WeakKeyDictionary[Any, Deadlines] = weakref.WeakKeyDictionary()
_last: list[Any] = [None, None]  # the clock asked for last and its Deadlines: a process has one reactor


def deadlinesFor(clock: Any) -> Deadlines:
    """The L{Deadlines} of C{clock} (a reactor, or a test's C{Clock}): one each."""
    if clock is _last[0]:
        return _last[1]
    deadlines = _byClock.get(clock)
    if deadlines is None:
        deadlines = _byClock[clock] = Deadlines(clock)
    _last[:] = clock, deadlines
    return deadlines
