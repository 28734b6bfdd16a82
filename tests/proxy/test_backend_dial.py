"""
The backend dial (tlsfast/_foreign/twistedtcp.py L{connectTCP} with a
C{timeoutClock}, as the proxy dials): the connect starts at once, with no
reactor timer (no C{callLater(0)}, the connect timeout on the deadline
sweep), and ends as Twisted's would: connected, refused, or timed out.
"""

from __future__ import annotations

import socket

import pytest
from twisted.internet import error
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import Clock

from tlsfast._foreign import twistedtcp
from tlsfast.proxy._deadlines import Deadlines

pytestmark = pytest.mark.skipif(not (twistedtcp.SURFACE.usable and twistedtcp.CONNECT_SURFACE.usable),
                                reason="this Twisted's tcp internals differ")


class FakeReactor(Clock):
    """A Clock that records (de)registrations instead of polling."""

    def __init__(self):
        super().__init__()
        self.readers: set = set()
        self.writers: set = set()

    def addReader(self, selectable):
        self.readers.add(selectable)

    def addWriter(self, selectable):
        self.writers.add(selectable)

    def removeReader(self, selectable):
        self.readers.discard(selectable)

    def removeWriter(self, selectable):
        self.writers.discard(selectable)


class Recorder(ClientFactory):
    noisy = False

    def __init__(self):
        self.made: list = []
        self.failed: list = []

    def buildProtocol(self, addr):
        protocol = Protocol()
        self.made.append(protocol)
        return protocol

    def clientConnectionFailed(self, connector, reason):
        self.failed.append(reason)


def dial(port: int, timeout: float = 3.0):
    reactor, sweepClock = FakeReactor(), Clock()
    factory = Recorder()
    connector = twistedtcp.connectTCP(reactor, "127.0.0.1", port, factory, timeout,
                                      timeoutClock=Deadlines(sweepClock))
    return reactor, sweepClock, factory, connector


def writable(reactor, transport, turns: int = 50) -> None:
    """What the reactor does for a connecting socket: doWrite until it is decided."""
    import select

    for _ in range(turns):
        if transport not in reactor.writers:
            return
        select.select([], [transport.fileno()], [], 0.1)
        transport.doWrite()


def test_the_connect_starts_at_once_without_a_reactor_timer():
    listening = socket.create_server(("127.0.0.1", 0))
    try:
        reactor, sweepClock, factory, connector = dial(listening.getsockname()[1])
        assert isinstance(connector, twistedtcp.DirectConnector)
        assert reactor.getDelayedCalls() == []  # no callLater(0), no connect timeout on the reactor
        assert len(sweepClock.getDelayedCalls()) == 1  # the sweep, for the connect timeout
        transport = connector.transport
        assert connector.state == "connecting" and transport in reactor.writers  # connect() sent the SYN
        writable(reactor, transport)
        assert connector.state == "connected" and len(factory.made) == 1 and not factory.failed
        assert factory.made[0].transport is transport
        assert not sweepClock.getDelayedCalls()  # the timeout disarmed
        transport.abortConnection()
    finally:
        listening.close()


def test_a_refused_connect_fails_as_twisteds_does():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    reactor, sweepClock, factory, connector = dial(port)
    if connector.transport is not None:
        writable(reactor, connector.transport)
    [reason] = factory.failed
    assert reason.check(error.ConnectionRefusedError)
    assert connector.state == "disconnected" and not factory.made
    assert not sweepClock.getDelayedCalls()


def test_the_connect_timeout_is_on_the_sweep():
    listening = socket.create_server(("127.0.0.1", 0))
    try:
        reactor, sweepClock, factory, connector = dial(listening.getsockname()[1], timeout=2.0)
        sweepClock.advance(1.9)
        assert not factory.failed
        sweepClock.advance(0.1)  # (never writable here: the fake reactor does not poll)
        [reason] = factory.failed
        assert reason.check(error.TimeoutError)
        assert connector.state == "disconnected" and not reactor.writers and not reactor.readers
    finally:
        listening.close()


def test_without_a_timeout_clock_the_connector_is_twisteds():
    reactor, factory = FakeReactor(), Recorder()
    connector = twistedtcp.connectTCP(reactor, "127.0.0.1", 9, factory, 3.0)
    assert type(connector) is twistedtcp.EagerConnector
    assert len(reactor.getDelayedCalls()) == 2  # the connect a turn later, the timeout
    connector.stopConnecting()


def test_where_the_connect_surface_fails_twisteds_connect_is_timed_out_by_the_sweep(monkeypatch):
    monkeypatch.setattr(twistedtcp, "CONNECT_SURFACE",
                        twistedtcp.Surface("twisted.internet.tcp connect", "Twisted", twistedtcp.TWISTED_TESTED,
                                           ["_finishInit is missing"]))
    listening = socket.create_server(("127.0.0.1", 0))
    try:
        reactor, sweepClock, factory, connector = dial(listening.getsockname()[1], timeout=2.0)
        assert type(connector) is twistedtcp.EagerConnector
        assert len(reactor.getDelayedCalls()) == 1  # Twisted's connect a turn later; no timeout there
        reactor.advance(0)
        sweepClock.advance(2.0)
        [reason] = factory.failed
        assert reason.check(error.TimeoutError)
    finally:
        listening.close()


def test_the_connect_surface_fails_without_the_names_it_uses(monkeypatch):
    from twisted.internet import tcp

    assert twistedtcp.checkConnect().problems == []
    monkeypatch.delattr(tcp._BaseBaseClient, "_setRealAddress")
    [problem] = twistedtcp.checkConnect().problems
    assert "_setRealAddress" in problem


class CountingSocket(socket.socket):
    """A socket that counts its connect() calls."""

    connects = 0

    def connect_ex(self, address):
        CountingSocket.connects += 1
        return super().connect_ex(address)


class CountingReactor(FakeReactor):
    def __init__(self):
        super().__init__()
        self.readerRemovals = 0

    def removeReader(self, selectable):
        self.readerRemovals += 1
        super().removeReader(selectable)


def test_connect_is_called_once_and_reading_stays_on(monkeypatch):
    """Once writable, SO_ERROR says the connect ended well: no second connect(), no stop/start reading."""

    def createInternetSocket(self):
        s = CountingSocket(self.addressFamily, self.socketType)
        s.setblocking(False)
        return s

    monkeypatch.setattr(twistedtcp.DirectClient, "createInternetSocket", createInternetSocket)
    monkeypatch.setattr(CountingSocket, "connects", 0)
    listening = socket.create_server(("127.0.0.1", 0))
    try:
        reactor, factory = CountingReactor(), Recorder()
        connector = twistedtcp.connectTCP(reactor, "127.0.0.1", listening.getsockname()[1], factory, 3.0,
                                          timeoutClock=Deadlines(Clock()))
        transport = connector.transport
        writable(reactor, transport)
        assert connector.state == "connected" and len(factory.made) == 1
        assert CountingSocket.connects == 1
        assert reactor.readerRemovals == 0 and transport in reactor.readers and transport not in reactor.writers
        assert "doRead" not in transport.__dict__ and "doWrite" not in transport.__dict__  # the class's again
        transport.abortConnection()
    finally:
        listening.close()


def test_a_connect_refused_after_it_started_fails_from_so_error():
    """The failure the second call reads from SO_ERROR is Twisted's, with the same text."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    reactor, sweepClock, factory, connector = dial(port)
    assert connector.transport in reactor.writers  # (so the failure comes from the second call)
    writable(reactor, connector.transport)
    [reason] = factory.failed
    assert type(reason.value) is error.ConnectionRefusedError
    assert str(reason.value) == str(error.getConnectError((111, "Connection refused")))
    assert not reactor.readers and not reactor.writers
