"""
The deadline sweep (tlsfast/proxy/_deadlines.py): every connection's
deadlines on one timer, never early, at most a resolution late, no timer
left when nothing is armed.
"""

from __future__ import annotations

import random

from twisted.internet.task import Clock

from tlsfast.proxy._deadlines import RESOLUTION, Deadline, Deadlines, deadlinesFor


def sweep():
    clock = Clock()
    return clock, Deadlines(clock)


def test_a_deadline_expires_at_its_time_not_before():
    clock, deadlines = sweep()
    fired = []
    deadline = Deadline(deadlines, lambda: fired.append(clock.seconds()))
    deadline.arm(5.0)
    clock.advance(4.99)
    assert fired == [] and deadline.active()
    clock.advance(0.01)
    assert fired == [5.0] and not deadline.active()
    assert not clock.getDelayedCalls()


def test_one_timer_for_many_deadlines():
    clock, deadlines = sweep()
    armed = [Deadline(deadlines, lambda: None) for _ in range(1000)]
    for index, deadline in enumerate(armed):
        deadline.arm(10.0 + index / 1000)
    assert len(clock.getDelayedCalls()) == 1


def test_disarmed_deadlines_do_not_expire_and_leave_no_timer():
    clock, deadlines = sweep()
    fired = []
    first = Deadline(deadlines, lambda: fired.append("first"))
    second = Deadline(deadlines, lambda: fired.append("second"))
    first.arm(1.0)
    second.arm(2.0)
    first.disarm()
    clock.advance(1.5)
    assert fired == []
    second.disarm()
    assert not clock.getDelayedCalls() and deadlines.armed == 0
    clock.advance(10)
    assert fired == []
    first.disarm()  # disarming a disarmed deadline changes nothing
    assert deadlines.armed == 0


def test_rearming_later_moves_the_expiry():
    clock, deadlines = sweep()
    fired = []
    deadline = Deadline(deadlines, lambda: fired.append(clock.seconds()))
    deadline.arm(1.0)
    deadline.arm(3.0)
    clock.advance(1.0)
    assert fired == [] and deadline.getTime() == 3.0
    clock.advance(2.0)
    assert fired == [3.0]


def test_rearming_earlier_moves_the_expiry_and_fires_once():
    clock, deadlines = sweep()
    fired = []
    deadline = Deadline(deadlines, lambda: fired.append(clock.seconds()))
    deadline.arm(5.0)
    deadline.arm(2.0)
    clock.advance(2.0)
    assert fired == [2.0]
    clock.advance(10.0)
    assert fired == [2.0]  # the entry left behind for 5.0 is not a second expiry
    assert not clock.getDelayedCalls()


def test_expiry_order_and_never_more_than_a_resolution_late():
    clock, deadlines = sweep()
    rng = random.Random(13)
    times = [rng.uniform(0.0, 20.0) for _ in range(500)]
    fired: list[tuple[float, float]] = []
    for at in times:
        Deadline(deadlines, lambda at=at: fired.append((at, clock.seconds()))).arm(at)
    while clock.getDelayedCalls():
        clock.advance(0.01)
    assert sorted(at for at, _ in fired) == sorted(times)
    for at, when in fired:
        assert at <= when + 1e-9 and when <= at + RESOLUTION + 0.01 + 1e-9
    # Expiry order: what a sweep did not expire was not due yet.
    for sweptAt in {when for _, when in fired}:
        assert all(at > sweptAt for at, when in fired if when > sweptAt)


def test_sweeps_are_at_least_a_resolution_apart():
    clock, deadlines = sweep()
    sweeps = []
    for index in range(100):
        Deadline(deadlines, lambda: sweeps.append(clock.seconds())).arm(1.0 + index * 0.001)
    while clock.getDelayedCalls():
        clock.advance(0.001)
    distinct = sorted(set(sweeps))
    assert len(distinct) == 2  # 1.0, then the rest one resolution later
    assert RESOLUTION <= distinct[1] - distinct[0] < RESOLUTION + 0.002  # (the clock moves in 0.001 steps)


def test_an_expiry_may_arm_another_deadline():
    clock, deadlines = sweep()
    fired = []
    second = Deadline(deadlines, lambda: fired.append(("second", clock.seconds())))

    def first():
        fired.append(("first", clock.seconds()))
        second.arm(clock.seconds() + 2.0)

    Deadline(deadlines, first).arm(1.0)
    clock.advance(1.0)
    clock.advance(2.0)
    assert fired == [("first", 1.0), ("second", 3.0)]
    assert not clock.getDelayedCalls()


def test_an_expiry_that_raises_does_not_stop_the_others():
    clock, deadlines = sweep()
    fired = []

    def broken():
        raise RuntimeError("boom")

    Deadline(deadlines, broken).arm(1.0)
    Deadline(deadlines, lambda: fired.append(clock.seconds())).arm(1.0)
    Deadline(deadlines, lambda: fired.append(clock.seconds())).arm(4.0)
    clock.advance(1.0)
    clock.advance(3.0)
    assert fired == [1.0, 4.0]


def test_many_connections_disarming_keep_the_heap_small():
    clock, deadlines = sweep()
    kept = Deadline(deadlines, lambda: None)
    kept.arm(1000.0)
    for index in range(10_000):
        deadline = Deadline(deadlines, lambda: None)
        deadline.arm(300.0 + index)
        deadline.disarm()
    assert deadlines.armed == 1
    assert len(deadlines._heap) < 200  # the leftovers are compacted away


def test_call_later_is_a_coarse_idelayedcall():
    clock, deadlines = sweep()
    fired = []
    call = deadlines.callLater(2.0, fired.append, "handshake")
    assert call.active() and call.getTime() == 2.0
    cancelled = deadlines.callLater(1.0, fired.append, "cancelled")
    cancelled.cancel()
    assert not cancelled.active()
    clock.advance(2.0)
    assert fired == ["handshake"] and not call.active()
    assert deadlines.seconds() == clock.seconds()


def test_one_sweep_per_clock():
    first, second = Clock(), Clock()
    assert deadlinesFor(first) is deadlinesFor(first)
    assert deadlinesFor(first) is not deadlinesFor(second)
    assert deadlinesFor(first).clock is first
