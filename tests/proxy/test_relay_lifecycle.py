"""
The Twisted adapters of the lifecycle (tlsfast/proxy/_relay.py) without
sockets: a Frontend and its Backend over StringTransports, time from a
Clock.  The idle timeout closes both sides, the close deadline aborts them,
and the connection ends with one close line and its slot given back.
"""

from __future__ import annotations

from types import SimpleNamespace

from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tlsfast.proxy._lifecycle import State
from tlsfast.proxy._metrics import ListenerStats
from tlsfast.proxy._relay import Backend, Frontend


class RecordingLog:
    debugEnabled = False

    def __init__(self):
        self.lines: list[tuple[str, str, dict]] = []

    def __call__(self, level, event, **fields):
        self.lines.append((level, event, fields))


class FakeListener:
    """What a Frontend needs of its Listener: settings, a clock, a log, the slot count."""

    tlsFront = tlsBack = False

    def __init__(self, idle: float = 10.0, close: float = 2.0):
        self.reactor = Clock()
        self.config = SimpleNamespace(name="l0", backendAddress=("127.0.0.1", 9), idle_timeout=idle,
                                      close_timeout=close, handshake_timeout=5.0)
        self.stats = ListenerStats()
        self.log = RecordingLog()
        self.open: set = set()
        self.dials: list = []

    def connectionOpened(self, frontend):
        self.open.add(frontend)

    def connectionClosed(self, frontend):
        self.open.discard(frontend)

    def connectBackend(self, frontend):
        connector = SimpleNamespace(state="connecting", transport=None, disconnect=lambda: None)
        self.dials.append(connector)
        return connector


def relaying(listener: FakeListener):
    """A plain client relayed to a plain backend."""
    client, server = StringTransport(), StringTransport()
    frontend = Frontend(listener)
    frontend.makeConnection(client)
    assert frontend.lifecycle.state is State.DIALLING and client.producerState == "paused"
    frontend.dataReceived(b"early")
    backend = Backend(frontend)
    backend.makeConnection(server)
    assert frontend.lifecycle.state is State.RELAYING and client.producerState == "producing"
    assert server.value() == b"early"
    return frontend, backend, client, server


def closes(listener):
    return [fields for _, event, fields in listener.log.lines if event == "close"]


def test_idle_timeout_then_close_deadline_aborts_both():
    listener = FakeListener(idle=10.0, close=2.0)
    frontend, backend, client, server = relaying(listener)
    listener.reactor.advance(10.0)
    assert frontend.lifecycle.state is State.CLOSING
    assert client.disconnecting and server.disconnecting  # closed gracefully (flush, close_notify) ...
    assert not closes(listener) and listener.open == {frontend}
    listener.reactor.advance(1.9)
    assert frontend.lifecycle.aborted is None  # ... and given until the deadline
    listener.reactor.advance(0.1)
    assert frontend.lifecycle.aborted == "close_deadline"
    frontend.connectionLost(Failure(ConnectionAborted()))
    backend.connectionLost(Failure(ConnectionAborted()))
    [line] = closes(listener)
    assert (line["by"], line["aborted"], line["error"], line["backend_error"]) == (
        "idle_timeout", "close_deadline", None, None)
    assert listener.open == set() and listener.stats.closes == {"idle_timeout": 1}
    assert not listener.reactor.getDelayedCalls()  # no timer left behind


def test_a_close_that_finishes_in_time_cancels_the_deadline():
    listener = FakeListener()
    frontend, backend, client, _server = relaying(listener)
    backend.connectionLost(Failure(ConnectionDone()))  # the backend closed cleanly
    assert client.disconnecting and frontend.lifecycle.state is State.CLOSING_BACKEND_GONE
    frontend.connectionLost(Failure(ConnectionDone()))  # the client answered
    [line] = closes(listener)
    assert (line["by"], line["aborted"], line["error"]) == ("backend", None, None)
    assert not listener.reactor.getDelayedCalls()


def test_drain_deadline_aborts_with_reason_shutdown():
    listener = FakeListener(idle=100.0)
    frontend, backend, _client, _server = relaying(listener)
    frontend.drain(listener.reactor.seconds() + 3.0)
    listener.reactor.advance(3.0)
    assert frontend.lifecycle.reason == "shutdown" and frontend.lifecycle.aborted == "drain_deadline"
    frontend.connectionLost(Failure(ConnectionAborted()))
    backend.connectionLost(Failure(ConnectionAborted()))
    [line] = closes(listener)
    assert (line["by"], line["aborted"]) == ("shutdown", "drain_deadline")
