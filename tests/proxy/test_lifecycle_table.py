"""
The connection lifecycle (tlsfast/proxy/_lifecycle.py) in memory, without
sockets: the stories a connection goes through, every transition of the
table, every event the table refuses, and the invariants (one reason, a
deadline on every graceful close, the end reached only with both sides gone).
"""

from __future__ import annotations

from collections import deque

import pytest

from tlsfast.proxy._lifecycle import (
    CLOSING_STATES,
    TRANSITIONS,
    Action,
    Event,
    Lifecycle,
    LifecycleError,
    Reason,
    State,
)

A, E, S = Action, Event, State


def drive(*events: Event) -> tuple[Lifecycle, list[tuple[Action, ...]]]:
    machine = Lifecycle()
    return machine, [machine.handle(event) for event in events]


# -- the stories ---------------------------------------------------------------------

def test_tls_client_relayed_then_closed_by_client():
    machine, actions = drive(E.ACCEPT_TLS, E.HANDSHAKE_DONE, E.BACKEND_READY, E.CLIENT_LOST, E.BACKEND_LOST)
    assert actions == [(), (A.DIAL,), (A.RELAY, A.RESUME_CLIENT),
                       (A.ARM_CLOSE_DEADLINE, A.NOTE_CLIENT_ERROR, A.CLOSE_BACKEND), (A.FINISH,)]
    assert (machine.state, machine.reason, machine.aborted) == (S.CLOSED, Reason.CLIENT, None)


def test_plain_client_dials_at_once():
    machine, actions = drive(E.ACCEPT_PLAIN)
    assert actions == [(A.DIAL,)] and machine.state is S.DIALLING


def test_handshake_failure_ends_at_once():
    """No backend was dialled: the client's loss is the end, and its error is noted."""
    machine, actions = drive(E.ACCEPT_TLS, E.CLIENT_LOST)
    assert actions[-1] == (A.NOTE_CLIENT_ERROR, A.FINISH)
    assert (machine.state, machine.reason) == (S.CLOSED, Reason.HANDSHAKE_FAILED)


def test_client_half_close_while_dialling_is_passed_on_when_ready():
    machine, actions = drive(E.ACCEPT_PLAIN, E.CLIENT_FIN, E.BACKEND_READY)
    assert actions[1:] == [(), (A.RELAY, A.END_BACKEND_WRITES)]  # and the client stays paused
    assert machine.state is S.CLIENT_DONE_SENDING and machine.reason is None


def test_client_half_close_then_backend_answers_and_closes():
    """nc -N: the client's FIN asks for the rest; the backend's end ends the exchange."""
    machine, actions = drive(E.ACCEPT_PLAIN, E.BACKEND_READY, E.CLIENT_FIN, E.BACKEND_LOST, E.CLIENT_LOST)
    assert actions[2:] == [(A.END_BACKEND_WRITES,), (A.ARM_CLOSE_DEADLINE, A.CLOSE_CLIENT), (A.FINISH,)]
    # The backend went as asked (we ended its writes): no error noted.
    assert A.NOTE_BACKEND_ERROR not in actions[3]
    assert (machine.state, machine.reason) == (S.CLOSED, Reason.BACKEND)


def test_backend_half_close_then_client_closes():
    """An HTTP backend answers and closes: the client's way of going after our close is no error."""
    machine, actions = drive(E.ACCEPT_TLS, E.HANDSHAKE_DONE, E.BACKEND_READY, E.BACKEND_FIN, E.CLIENT_LOST,
                             E.BACKEND_LOST)
    assert actions[3:] == [(A.END_CLIENT_WRITES,), (A.ARM_CLOSE_DEADLINE, A.CLOSE_BACKEND), (A.FINISH,)]
    assert A.NOTE_CLIENT_ERROR not in actions[4]
    assert (machine.state, machine.reason) == (S.CLOSED, Reason.BACKEND)


def test_fin_both_ways_closes_both():
    machine, actions = drive(E.ACCEPT_PLAIN, E.BACKEND_READY, E.BACKEND_FIN, E.CLIENT_FIN)
    assert actions[-1] == (A.ARM_CLOSE_DEADLINE, A.CLOSE_CLIENT, A.CLOSE_BACKEND)
    assert (machine.state, machine.reason) == (S.CLOSING, Reason.BACKEND)
    machine.handle(E.BACKEND_LOST)
    assert machine.handle(E.CLIENT_LOST) == (A.FINISH,)


def test_backend_lost_while_relaying_notes_its_error():
    machine, actions = drive(E.ACCEPT_TLS, E.HANDSHAKE_DONE, E.BACKEND_READY, E.BACKEND_LOST)
    assert actions[-1] == (A.ARM_CLOSE_DEADLINE, A.NOTE_BACKEND_ERROR, A.CLOSE_CLIENT)
    assert (machine.state, machine.reason) == (S.CLOSING_BACKEND_GONE, Reason.BACKEND)


def test_backend_failed_closes_the_client_with_a_deadline():
    machine, actions = drive(E.ACCEPT_TLS, E.HANDSHAKE_DONE, E.BACKEND_FAILED)
    assert actions[-1] == (A.ARM_CLOSE_DEADLINE, A.REPORT_BACKEND_FAILED, A.CLOSE_CLIENT)
    assert (machine.state, machine.reason) == (S.CLOSING_BACKEND_GONE, Reason.BACKEND_FAILED)
    assert machine.handle(E.CLIENT_LOST) == (A.FINISH,)


def test_client_lost_while_dialling_cancels_the_dial():
    machine, actions = drive(E.ACCEPT_PLAIN, E.CLIENT_LOST)
    assert actions[-1] == (A.ARM_CLOSE_DEADLINE, A.NOTE_CLIENT_ERROR, A.CANCEL_DIAL)
    assert machine.state is S.CLOSING_CLIENT_GONE
    # The cancelled dial fails (or, racing, completes and is closed).
    assert machine.handle(E.BACKEND_READY) == (A.CLOSE_BACKEND,)
    assert machine.handle(E.BACKEND_LOST) == (A.FINISH,)
    assert machine.reason is Reason.CLIENT


def test_idle_timeout_closes_both_and_the_deadline_aborts():
    """Finding 1: the idle close is graceful, and bounded: the deadline aborts, the reason stays."""
    machine, actions = drive(E.ACCEPT_TLS, E.HANDSHAKE_DONE, E.BACKEND_READY, E.IDLE_TIMEOUT)
    assert actions[-1] == (A.ARM_CLOSE_DEADLINE, A.CLOSE_CLIENT, A.CLOSE_BACKEND)
    assert machine.state is S.CLOSING
    assert machine.handle(E.CLOSE_DEADLINE) == (A.ABORT,)
    assert (machine.reason, machine.aborted) == (Reason.IDLE_TIMEOUT, E.CLOSE_DEADLINE)
    machine.handle(E.CLIENT_LOST)
    assert machine.handle(E.BACKEND_LOST) == (A.FINISH,)
    assert (machine.state, machine.reason, machine.aborted) == (S.CLOSED, Reason.IDLE_TIMEOUT, E.CLOSE_DEADLINE)


def test_idle_while_handshaking_or_dialling():
    machine, actions = drive(E.ACCEPT_TLS, E.IDLE_TIMEOUT)
    assert actions[-1] == (A.ARM_CLOSE_DEADLINE, A.CLOSE_CLIENT)
    assert machine.state is S.CLOSING_BACKEND_GONE  # no backend was ever dialled
    machine, actions = drive(E.ACCEPT_PLAIN, E.IDLE_TIMEOUT)
    assert actions[-1] == (A.ARM_CLOSE_DEADLINE, A.CANCEL_DIAL, A.CLOSE_CLIENT)
    assert machine.handle(E.BACKEND_FAILED) == ()  # the dial we gave up on: not reported
    assert machine.state is S.CLOSING_BACKEND_GONE and machine.reason is Reason.IDLE_TIMEOUT


def test_a_handshake_completing_as_we_close_is_ignored():
    machine, _ = drive(E.ACCEPT_TLS, E.IDLE_TIMEOUT)
    assert machine.handle(E.HANDSHAKE_DONE) == ()  # no dial
    assert machine.state is S.CLOSING_BACKEND_GONE


def test_drain_lets_the_connection_finish_on_its_own():
    machine, actions = drive(E.ACCEPT_TLS, E.HANDSHAKE_DONE, E.BACKEND_READY, E.DRAIN)
    assert actions[-1] == (A.ARM_DRAIN_DEADLINE,) and machine.state is S.RELAYING and machine.reason is None
    machine.handle(E.CLIENT_LOST)
    machine.handle(E.BACKEND_LOST)
    assert (machine.state, machine.reason, machine.aborted) == (S.CLOSED, Reason.CLIENT, None)


def test_drain_deadline_aborts_with_reason_shutdown():
    machine, actions = drive(E.ACCEPT_TLS, E.HANDSHAKE_DONE, E.BACKEND_READY, E.DRAIN, E.DRAIN_DEADLINE)
    assert actions[-1] == (A.ABORT,)
    assert (machine.state, machine.reason, machine.aborted) == (S.CLOSING, Reason.SHUTDOWN, E.DRAIN_DEADLINE)


def test_drain_deadline_while_already_closing_keeps_the_reason():
    machine, _ = drive(E.ACCEPT_PLAIN, E.BACKEND_READY, E.BACKEND_LOST, E.DRAIN, E.DRAIN_DEADLINE)
    assert (machine.reason, machine.aborted) == (Reason.BACKEND, E.DRAIN_DEADLINE)


def test_invalid_event_raises_and_changes_nothing():
    machine, _ = drive(E.ACCEPT_TLS)
    with pytest.raises(LifecycleError, match="backend_fin.*handshaking"):
        machine.handle(E.BACKEND_FIN)
    assert (machine.state, machine.reason) == (S.HANDSHAKING, None)


def test_nothing_happens_after_closed():
    machine, _ = drive(E.ACCEPT_TLS, E.CLIENT_LOST)
    for event in Event:
        with pytest.raises(LifecycleError):
            machine.handle(event)
    assert (machine.state, machine.reason) == (S.CLOSED, Reason.HANDSHAKE_FAILED)


def test_which_side_is_open():
    machine = Lifecycle()
    opened = []
    for event in (E.ACCEPT_PLAIN, E.BACKEND_READY, E.BACKEND_LOST, E.CLIENT_LOST):
        machine.handle(event)
        opened.append((machine.clientOpen, machine.backendOpen))
    assert opened == [(True, False), (True, True), (True, False), (False, False)]


# -- every transition, every refusal -----------------------------------------------

def _paths() -> dict[State, tuple[Event, ...]]:
    """A shortest path of events from ACCEPTED to each state."""
    paths: dict[State, tuple[Event, ...]] = {S.ACCEPTED: ()}
    queue = deque([S.ACCEPTED])
    while queue:
        state = queue.popleft()
        for event, transition in TRANSITIONS[state].items():
            if transition.next not in paths:
                paths[transition.next] = paths[state] + (event,)
                queue.append(transition.next)
    return paths


PATHS = _paths()
ALLOWED = [(state, event) for state in State for event in TRANSITIONS[state]]
REFUSED = [(state, event) for state in State for event in Event if event not in TRANSITIONS[state]]


def test_every_state_is_in_the_table_and_reachable():
    assert set(TRANSITIONS) == set(State)
    assert set(PATHS) == set(State)


@pytest.mark.parametrize(("state", "event"), ALLOWED, ids=[f"{s}-{e}" for s, e in ALLOWED])
def test_every_transition(state, event):
    machine, _ = drive(*PATHS[state])
    assert machine.state is state
    reasonBefore = machine.reason
    transition = TRANSITIONS[state][event]
    assert machine.handle(event) == transition.actions
    assert machine.state is transition.next
    # One reason: the first given stays.
    assert machine.reason == (reasonBefore if reasonBefore is not None else transition.reason)
    # Both sides gone, and only then, the connection finishes.
    assert (A.FINISH in transition.actions) == (transition.next is S.CLOSED)
    # Moving into a graceful close arms the close deadline first (closing a
    # side may synchronously finish the connection), unless it aborts.
    if state not in CLOSING_STATES and transition.next in CLOSING_STATES:
        assert transition.actions[0] in (A.ARM_CLOSE_DEADLINE, A.ABORT), transition
        assert machine.reason is not None, "a connection moving to close must say why"
    if transition.next is S.CLOSED:
        assert machine.reason is not None


@pytest.mark.parametrize(("state", "event"), REFUSED, ids=[f"{s}-{e}" for s, e in REFUSED])
def test_every_refusal(state, event):
    machine, _ = drive(*PATHS[state])
    before = (machine.state, machine.reason, machine.aborted)
    with pytest.raises(LifecycleError):
        machine.handle(event)
    assert (machine.state, machine.reason, machine.aborted) == before


def test_the_refusals_are_the_bugs_expected():
    """A few refusals spelled out: each is an adapter bug, not a peer's doing."""
    refused = set(REFUSED)
    assert (S.ACCEPTED, E.CLIENT_LOST) in refused  # before connectionMade
    assert (S.HANDSHAKING, E.BACKEND_READY) in refused  # no dial yet
    assert (S.RELAYING, E.CLOSE_DEADLINE) in refused  # no close under way: no deadline armed
    assert (S.CLOSING, E.IDLE_TIMEOUT) in refused  # the close deadline replaced the idle timer
    assert (S.CLIENT_DONE_SENDING, E.CLIENT_FIN) in refused  # a FIN comes once
    assert (S.CLOSING_CLIENT_GONE, E.CLIENT_LOST) in refused  # lost once


def test_every_graceful_close_has_a_deadline_and_every_path_ends_with_one_reason():
    """
    Over every reachable (state, reason): a closing state always allows the
    close deadline (which aborts), and CLOSED is only ever reached with a reason.
    """
    seen = set()
    queue = deque([(S.ACCEPTED, None)])
    while queue:
        state, reason = queue.popleft()
        if (state, reason) in seen:
            continue
        seen.add((state, reason))
        if state in CLOSING_STATES:
            assert TRANSITIONS[state][E.CLOSE_DEADLINE].actions == (A.ABORT,)
            assert reason is not None
        if state is S.CLOSED:
            assert reason is not None
        for transition in TRANSITIONS[state].values():
            queue.append((transition.next, reason if reason is not None else transition.reason))
    assert {state for state, _ in seen} == set(State)


def test_drain_is_allowed_until_closed():
    """SIGTERM may come at any time: every state but ACCEPTED and CLOSED takes it and its deadline."""
    for state in State:
        if state in (S.ACCEPTED, S.CLOSED):
            assert E.DRAIN not in TRANSITIONS[state]
        else:
            assert TRANSITIONS[state][E.DRAIN].actions == (A.ARM_DRAIN_DEADLINE,)
            assert TRANSITIONS[state][E.DRAIN_DEADLINE].actions == (A.ABORT,)
