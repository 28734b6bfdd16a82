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

import heapq
import itertools
import weakref
from collections.abc import Callable
from functools import partial
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

    __slots__ = ("_deadlines", "_queued", "_queuedAt", "at", "expired")

    def __init__(self, deadlines: Deadlines, expired: Callable[[], object]) -> None:
        self._deadlines = deadlines
        self.expired = expired
        self.at: float | None = None  # when it expires (clock time), None when disarmed
        self._queued: int | None = None  # the sequence number of its live heap entry
        self._queuedAt = 0.0  # ... and that entry's time

    def arm(self, at: float) -> None:
        """Expire at C{at} (clock time), instead of any time armed before."""
        self._deadlines._arm(self, at)

    def disarm(self) -> None:
        """Do not expire (a no-op when not armed)."""
        if self.at is not None:
            self._deadlines._disarm(self)

    def active(self) -> bool:
        return self.at is not None

    def cancel(self) -> None:
        self.disarm()

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
        self.resolution = resolution
        self._heap: list[tuple[float, int, Deadline]] = []
        self._sequence = itertools.count()
        self.armed = 0  # deadlines armed now
        self._sweepCall: Any = None  # the clock's IDelayedCall for the next sweep
        self._sweepAt = float("inf")
        self._notBefore = float("-inf")  # the last sweep's time + resolution

    def seconds(self) -> float:
        return self.clock.seconds()

    def deadline(self, expired: Callable[[], object]) -> Deadline:
        """A new, disarmed L{Deadline} calling C{expired}."""
        return Deadline(self, expired)

    def callLater(self, delay: float, function: Callable[..., object], *args: object,
                  **kwargs: object) -> Deadline:
        """C{IReactorTime.callLater}, at this sweep's resolution."""
        deadline = Deadline(self, partial(function, *args, **kwargs) if args or kwargs else function)
        deadline.arm(self.clock.seconds() + delay)
        return deadline

    # -- arming -------------------------------------------------------------------

    def _arm(self, deadline: Deadline, at: float) -> None:
        if deadline.at is None:
            self.armed += 1
        deadline.at = at
        if deadline._queued is None or at < deadline._queuedAt:
            self._push(deadline, at)
        self._sweepBy(at)

    def _push(self, deadline: Deadline, at: float) -> None:
        sequence = next(self._sequence)
        heapq.heappush(self._heap, (at, sequence, deadline))
        deadline._queued, deadline._queuedAt = sequence, at

    def _disarm(self, deadline: Deadline) -> None:
        deadline.at = None
        self.armed -= 1
        if not self.armed:
            self._clear()
        elif len(self._heap) > 2 * self.armed + _SLACK:
            self._compact()

    def _clear(self) -> None:
        """Nothing armed: no entries, no timer left on the clock."""
        for _, _, deadline in self._heap:
            deadline._queued = None
        self._heap = []
        if self._sweepCall is not None:
            self._sweepCall.cancel()
            self._sweepCall, self._sweepAt = None, float("inf")

    def _compact(self) -> None:
        live = []
        for entry in self._heap:
            deadline = entry[2]
            if deadline._queued == entry[1]:
                if deadline.at is None:
                    deadline._queued = None
                else:
                    live.append(entry)
        heapq.heapify(live)
        self._heap = live

    # -- the sweep ------------------------------------------------------------------

    def _sweepBy(self, at: float) -> None:
        """Have a sweep run by C{at}, or as soon after the last as the resolution allows."""
        if at < self._notBefore:
            at = self._notBefore
        if at < self._sweepAt:
            self._scheduleSweep(at)

    def _scheduleSweep(self, at: float) -> None:
        if self._sweepCall is not None:
            self._sweepCall.cancel()
        self._sweepAt = at
        self._sweepCall = self.clock.callLater(max(at - self.clock.seconds(), 0.0), self._sweep)

    def _sweep(self) -> None:
        self._sweepCall, self._sweepAt = None, float("inf")
        now = self.clock.seconds()
        self._notBefore = now + self.resolution
        due = now + _ROUNDING
        heap = self._heap
        try:
            while heap and heap[0][0] <= due:
                _, sequence, deadline = heapq.heappop(heap)
                if deadline._queued != sequence:
                    continue  # moved earlier since: a newer entry stands for it
                deadline._queued = None
                at = deadline.at
                if at is None:
                    continue  # disarmed
                if at > due:
                    self._push(deadline, at)  # moved later since
                    continue
                deadline.at = None
                self.armed -= 1
                try:
                    deadline.expired()
                except Exception:
                    _log.failure("a deadline's expiry failed")
                heap = self._heap  # (a disarm in expired() may have compacted it)
        finally:
            if not self.armed:
                self._clear()
            else:
                self._sweepBy(self._heap[0][0])


_byClock: weakref.WeakKeyDictionary[Any, Deadlines] = weakref.WeakKeyDictionary()


def deadlinesFor(clock: Any) -> Deadlines:
    """The L{Deadlines} of C{clock} (a reactor, or a test's C{Clock}): one each."""
    deadlines = _byClock.get(clock)
    if deadlines is None:
        deadlines = _byClock[clock] = Deadlines(clock)
    return deadlines
