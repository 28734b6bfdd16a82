"""
The life of one relayed connection (a client and its backend) as data:
its states, the events that move it, and what the adapter must do on each
move, in one table (L{TRANSITIONS}), in the style of h11's C{_state.py}.

This module does no I/O and knows no Twisted: L{Lifecycle.handle} takes an
event, moves to the next state and returns the actions for the adapter
(C{tlsfast.proxy._relay}) to perform.  An event the table does not allow in
the current state raises L{LifecycleError}: that is a bug in the adapter,
never something a peer can cause.

The states::

    ACCEPTED --> HANDSHAKING (TLS client) --> DIALLING --> RELAYING
                              \\                  |           |  \\
                               \\      (plain client FIN)  FIN from one side:
                                \\                |        CLIENT_DONE_SENDING /
                                 \\   DIALLING_CLIENT_DONE BACKEND_DONE_SENDING
                                  \\               \\          /
                                   '--> CLOSING, CLOSING_CLIENT_GONE,
                                        CLOSING_BACKEND_GONE --> CLOSED

- The half-closed states still relay the other direction; like RELAYING
  they are guarded by the idle timeout.
- The three closing states are the graceful close: both sides have been
  told to close (what is buffered is flushed first, a TLS side gets a
  close_notify and we wait for its reply), and they differ in which side
  is already gone.  Entering them arms the close deadline; when it expires
  (C{CLOSE_DEADLINE}) both sides are aborted.
- C{DRAIN} (SIGTERM) changes nothing but arms the drain deadline; when that
  expires (C{DRAIN_DEADLINE}) the connection is aborted, wherever it is.
- The connection ends with exactly one reason (C{by=} in the log): the
  first transition that gives one sets it, and nothing changes it after.
  A client's FIN does not give one (it asks for the rest of the answer); a
  backend's FIN does (it ends the exchange).
- Every state but CLOSED is left within a deadline, one timeout per phase
  (the settings of C{tlsfast.proxy._config}, docs/proxy.md "Timeouts")::

      (before ACCEPTED)     proxy_header_timeout  accept_proxy: the balancer's PROXY header
                                                  (no lifecycle until it is read)
      HANDSHAKING           handshake_timeout     the TLS layer fails it: CLIENT_LOST
      DIALLING,             connect_timeout, then the dial fails: BACKEND_FAILED
      DIALLING_CLIENT_DONE  backend_handshake_timeout (TLS backends)
      HANDSHAKING to the    idle_timeout          IDLE_TIMEOUT (no data either way)
      half-closed states
      closing states        close_timeout         CLOSE_DEADLINE
      any, after SIGTERM    drain_timeout         DRAIN_DEADLINE

  A client whose backend never comes is closed (C{by=backend_failed})
  when the dial's own deadlines expire: at most C{connect_timeout} plus,
  for a TLS backend, C{backend_handshake_timeout} after its own handshake.
  Those two are carried by the dial (the TCP connector's timeout, the
  backend TLS options' handshake timeout) and arrive as BACKEND_FAILED,
  so they need no event of their own here.
- A side lost on its own (not after we closed it) notes its error
  (C{NOTE_CLIENT_ERROR}, C{NOTE_BACKEND_ERROR}); a side lost after we closed
  it ended as asked, however it went, and its way of going is no error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class State(StrEnum):
    ACCEPTED = "accepted"
    HANDSHAKING = "handshaking"  # a TLS client: until its handshake is done
    DIALLING = "dialling"  # the backend is being reached; the client is paused
    DIALLING_CLIENT_DONE = "dialling_client_done"  # ... and the (plain) client has sent FIN
    RELAYING = "relaying"
    CLIENT_DONE_SENDING = "client_done_sending"  # client->backend ended (a FIN, passed on)
    BACKEND_DONE_SENDING = "backend_done_sending"  # backend->client ended
    CLOSING = "closing"  # both sides closing
    CLOSING_CLIENT_GONE = "closing_client_gone"  # the client is gone, the backend closing
    CLOSING_BACKEND_GONE = "closing_backend_gone"  # the backend is gone (or never was), the client closing
    CLOSED = "closed"


class Event(StrEnum):
    ACCEPT_TLS = "accept_tls"
    ACCEPT_PLAIN = "accept_plain"
    HANDSHAKE_DONE = "handshake_done"
    BACKEND_READY = "backend_ready"
    BACKEND_FAILED = "backend_failed"  # not reached, or lost before it was ready
    CLIENT_FIN = "client_fin"  # a plain client finished sending
    BACKEND_FIN = "backend_fin"
    CLIENT_LOST = "client_lost"  # while handshaking: the handshake failed
    BACKEND_LOST = "backend_lost"
    IDLE_TIMEOUT = "idle_timeout"
    DRAIN = "drain"  # SIGTERM: no new connections, this one may finish
    CLOSE_DEADLINE = "close_deadline"
    DRAIN_DEADLINE = "drain_deadline"


class Action(StrEnum):
    DIAL = "dial"  # pause the client, connect to the backend
    CANCEL_DIAL = "cancel_dial"
    RELAY = "relay"  # the backend is ready: send what the client sent meanwhile, wire flow control
    RESUME_CLIENT = "resume_client"
    END_CLIENT_WRITES = "end_client_writes"  # FIN (plain) or close_notify (TLS) after the buffer
    END_BACKEND_WRITES = "end_backend_writes"
    CLOSE_CLIENT = "close_client"  # close after the buffer, reading on to see the peer's close
    CLOSE_BACKEND = "close_backend"
    REPORT_BACKEND_FAILED = "report_backend_failed"
    NOTE_CLIENT_ERROR = "note_client_error"
    NOTE_BACKEND_ERROR = "note_backend_error"
    ARM_CLOSE_DEADLINE = "arm_close_deadline"  # (and stop the idle timer)
    ARM_DRAIN_DEADLINE = "arm_drain_deadline"
    ABORT = "abort"  # both sides (or the dial) at once, sending nothing more
    FINISH = "finish"  # both sides gone: the close line, the slot back


class Reason(StrEnum):
    """Why a connection ended: C{by=} in the close line, C{by} label of the closes metric."""

    CLIENT = "client"
    BACKEND = "backend"
    HANDSHAKE_FAILED = "handshake_failed"
    BACKEND_FAILED = "backend_failed"
    IDLE_TIMEOUT = "idle_timeout"
    SHUTDOWN = "shutdown"  # aborted at the drain deadline


class Transition(NamedTuple):
    next: State
    reason: Reason | None
    actions: tuple[Action, ...]


class LifecycleError(Exception):
    """An event the current state does not allow: a bug in the adapter, not a peer's doing."""


S, E, A, R, T = State, Event, Action, Reason, Transition  # short names for the table

# The close deadline is armed first: closing a side may report another's loss
# at once (a cancelled dial fails synchronously), which may finish the connection.
_CLOSE_BOTH = (A.ARM_CLOSE_DEADLINE, A.CLOSE_CLIENT, A.CLOSE_BACKEND)
_CLOSE_CLIENT = (A.ARM_CLOSE_DEADLINE, A.CLOSE_CLIENT)
_CLOSE_BACKEND = (A.ARM_CLOSE_DEADLINE, A.CLOSE_BACKEND)
_DRAIN = (A.ARM_DRAIN_DEADLINE,)
_ABORT = (A.ABORT,)

# The table: TRANSITIONS[state][event] -> (next state, reason if none yet, actions).
# Anything missing is a LifecycleError.
TRANSITIONS: dict[State, dict[Event, Transition]] = {
    S.ACCEPTED: {
        E.ACCEPT_TLS: T(S.HANDSHAKING, None, ()),
        E.ACCEPT_PLAIN: T(S.DIALLING, None, (A.DIAL,)),
    },
    S.HANDSHAKING: {
        E.HANDSHAKE_DONE: T(S.DIALLING, None, (A.DIAL,)),
        # the handshake failed (or timed out)
        E.CLIENT_LOST: T(S.CLOSED, R.HANDSHAKE_FAILED, (A.NOTE_CLIENT_ERROR, A.FINISH)),
        # no backend yet: as if it were gone
        E.IDLE_TIMEOUT: T(S.CLOSING_BACKEND_GONE, R.IDLE_TIMEOUT, _CLOSE_CLIENT),
        E.DRAIN: T(S.HANDSHAKING, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING_BACKEND_GONE, R.SHUTDOWN, _ABORT),
    },
    S.DIALLING: {
        E.CLIENT_FIN: T(S.DIALLING_CLIENT_DONE, None, ()),
        E.BACKEND_READY: T(S.RELAYING, None, (A.RELAY, A.RESUME_CLIENT)),
        E.BACKEND_FAILED: T(S.CLOSING_BACKEND_GONE, R.BACKEND_FAILED,
                            (A.ARM_CLOSE_DEADLINE, A.REPORT_BACKEND_FAILED, A.CLOSE_CLIENT)),
        E.CLIENT_LOST: T(S.CLOSING_CLIENT_GONE, R.CLIENT,
                         (A.ARM_CLOSE_DEADLINE, A.NOTE_CLIENT_ERROR, A.CANCEL_DIAL)),
        E.IDLE_TIMEOUT: T(S.CLOSING, R.IDLE_TIMEOUT, (A.ARM_CLOSE_DEADLINE, A.CANCEL_DIAL, A.CLOSE_CLIENT)),
        E.DRAIN: T(S.DIALLING, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING, R.SHUTDOWN, _ABORT),
    },
    S.DIALLING_CLIENT_DONE: {
        # (a FIN comes once; harmless)
        E.CLIENT_FIN: T(S.DIALLING_CLIENT_DONE, None, ()),
        E.BACKEND_READY: T(S.CLIENT_DONE_SENDING, None, (A.RELAY, A.END_BACKEND_WRITES)),
        E.BACKEND_FAILED: T(S.CLOSING_BACKEND_GONE, R.BACKEND_FAILED,
                            (A.ARM_CLOSE_DEADLINE, A.REPORT_BACKEND_FAILED, A.CLOSE_CLIENT)),
        E.CLIENT_LOST: T(S.CLOSING_CLIENT_GONE, R.CLIENT,
                         (A.ARM_CLOSE_DEADLINE, A.NOTE_CLIENT_ERROR, A.CANCEL_DIAL)),
        E.IDLE_TIMEOUT: T(S.CLOSING, R.IDLE_TIMEOUT, (A.ARM_CLOSE_DEADLINE, A.CANCEL_DIAL, A.CLOSE_CLIENT)),
        E.DRAIN: T(S.DIALLING_CLIENT_DONE, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING, R.SHUTDOWN, _ABORT),
    },
    S.RELAYING: {
        E.CLIENT_FIN: T(S.CLIENT_DONE_SENDING, None, (A.END_BACKEND_WRITES,)),
        E.BACKEND_FIN: T(S.BACKEND_DONE_SENDING, R.BACKEND, (A.END_CLIENT_WRITES,)),
        E.CLIENT_LOST: T(S.CLOSING_CLIENT_GONE, R.CLIENT,
                         (A.ARM_CLOSE_DEADLINE, A.NOTE_CLIENT_ERROR, A.CLOSE_BACKEND)),
        E.BACKEND_LOST: T(S.CLOSING_BACKEND_GONE, R.BACKEND,
                          (A.ARM_CLOSE_DEADLINE, A.NOTE_BACKEND_ERROR, A.CLOSE_CLIENT)),
        E.IDLE_TIMEOUT: T(S.CLOSING, R.IDLE_TIMEOUT, _CLOSE_BOTH),
        E.DRAIN: T(S.RELAYING, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING, R.SHUTDOWN, _ABORT),
    },
    S.CLIENT_DONE_SENDING: {
        E.BACKEND_FIN: T(S.CLOSING, R.BACKEND, _CLOSE_BOTH),
        E.CLIENT_LOST: T(S.CLOSING_CLIENT_GONE, R.CLIENT,
                         (A.ARM_CLOSE_DEADLINE, A.NOTE_CLIENT_ERROR, A.CLOSE_BACKEND)),
        # we ended its writes: it went as asked
        E.BACKEND_LOST: T(S.CLOSING_BACKEND_GONE, R.BACKEND, _CLOSE_CLIENT),
        E.IDLE_TIMEOUT: T(S.CLOSING, R.IDLE_TIMEOUT, _CLOSE_BOTH),
        E.DRAIN: T(S.CLIENT_DONE_SENDING, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING, R.SHUTDOWN, _ABORT),
    },
    S.BACKEND_DONE_SENDING: {
        E.CLIENT_FIN: T(S.CLOSING, R.CLIENT, _CLOSE_BOTH),
        # we ended its writes (TLS: close_notify): it went as asked
        E.CLIENT_LOST: T(S.CLOSING_CLIENT_GONE, R.CLIENT, _CLOSE_BACKEND),
        E.BACKEND_LOST: T(S.CLOSING_BACKEND_GONE, R.BACKEND,
                          (A.ARM_CLOSE_DEADLINE, A.NOTE_BACKEND_ERROR, A.CLOSE_CLIENT)),
        E.IDLE_TIMEOUT: T(S.CLOSING, R.IDLE_TIMEOUT, _CLOSE_BOTH),
        E.DRAIN: T(S.BACKEND_DONE_SENDING, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING, R.SHUTDOWN, _ABORT),
    },
    S.CLOSING: {
        E.CLIENT_LOST: T(S.CLOSING_CLIENT_GONE, None, ()),
        E.BACKEND_LOST: T(S.CLOSING_BACKEND_GONE, None, ()),
        # the dial we cancelled
        E.BACKEND_FAILED: T(S.CLOSING_BACKEND_GONE, None, ()),
        # ready as we gave up
        E.BACKEND_READY: T(S.CLOSING, None, (A.CLOSE_BACKEND,)),
        E.CLIENT_FIN: T(S.CLOSING, None, ()),
        E.BACKEND_FIN: T(S.CLOSING, None, ()),
        E.CLOSE_DEADLINE: T(S.CLOSING, None, _ABORT),
        E.DRAIN: T(S.CLOSING, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING, None, _ABORT),
    },
    S.CLOSING_CLIENT_GONE: {
        E.BACKEND_LOST: T(S.CLOSED, None, (A.FINISH,)),
        E.BACKEND_FAILED: T(S.CLOSED, None, (A.FINISH,)),
        E.BACKEND_READY: T(S.CLOSING_CLIENT_GONE, None, (A.CLOSE_BACKEND,)),
        E.BACKEND_FIN: T(S.CLOSING_CLIENT_GONE, None, ()),
        E.CLOSE_DEADLINE: T(S.CLOSING_CLIENT_GONE, None, _ABORT),
        E.DRAIN: T(S.CLOSING_CLIENT_GONE, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING_CLIENT_GONE, None, _ABORT),
    },
    S.CLOSING_BACKEND_GONE: {
        E.CLIENT_LOST: T(S.CLOSED, None, (A.FINISH,)),
        E.CLIENT_FIN: T(S.CLOSING_BACKEND_GONE, None, ()),
        # closed while handshaking: no dial
        E.HANDSHAKE_DONE: T(S.CLOSING_BACKEND_GONE, None, ()),
        E.CLOSE_DEADLINE: T(S.CLOSING_BACKEND_GONE, None, _ABORT),
        E.DRAIN: T(S.CLOSING_BACKEND_GONE, None, _DRAIN),
        E.DRAIN_DEADLINE: T(S.CLOSING_BACKEND_GONE, None, _ABORT),
    },
    S.CLOSED: {},
}

_CLIENT_GONE = frozenset({State.CLOSING_CLIENT_GONE, State.CLOSED})
_BACKEND_UP = frozenset({State.RELAYING, State.CLIENT_DONE_SENDING, State.BACKEND_DONE_SENDING,
                         State.CLOSING, State.CLOSING_CLIENT_GONE})
CLOSING_STATES = frozenset({State.CLOSING, State.CLOSING_CLIENT_GONE, State.CLOSING_BACKEND_GONE})
_DEADLINES = frozenset({Event.CLOSE_DEADLINE, Event.DRAIN_DEADLINE})


class Lifecycle:
    """
    One connection's place in L{TRANSITIONS}, its one close reason
    (C{reason}) and, if a deadline cut it, which one (C{aborted}).
    """

    __slots__ = ("aborted", "reason", "state")

    def __init__(self) -> None:
        self.state = State.ACCEPTED
        self.reason: Reason | None = None
        self.aborted: Event | None = None

    def handle(self, event: Event) -> tuple[Action, ...]:
        """Move on C{event}; the actions to perform (raises L{LifecycleError} if not allowed)."""
        transition = TRANSITIONS[self.state].get(event)
        if transition is None:
            raise LifecycleError(f"event {event} is not allowed in state {self.state}")
        self.state = transition.next
        if self.reason is None:
            self.reason = transition.reason
        if event in _DEADLINES and self.aborted is None:
            self.aborted = event
        return transition.actions

    @property
    def clientOpen(self) -> bool:
        return self.state not in _CLIENT_GONE

    @property
    def backendOpen(self) -> bool:
        """A backend connection that was ready and is not gone."""
        return self.state in _BACKEND_UP
