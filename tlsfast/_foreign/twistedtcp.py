# -*- test-case-name: tests.twisted.test_eager -*-
"""
TCP transports that write at once when nothing is queued.

Twisted's C{write()} only queues: the bytes go out on the next reactor turn,
after an C{epoll_ctl} to watch for writability and another to stop.  A
request/response pays that on each of its writes (for a relay: two reactor
turns and four C{epoll_ctl} calls per round trip).  Like asyncio's
transports, these try C{send()} first when the queue is empty and queue only
what the kernel did not take; with anything queued they behave exactly as
Twisted's, so order, back-pressure and close are unchanged.  What changes is
timing: a write reaches the kernel before C{write()} returns, so this is
opt-in (C{tlsfast.twisted.install(eagerWrites=True)}, or per connection
through L{connectTCP} / L{useEagerServers}).

Private surface: C{twisted.internet.tcp}'s write queue (C{dataBuffer},
C{offset}, C{_tempDataBuffer}, C{_writeDisconnecting}, C{_aborting}), the
C{Port.transport} class attribute, C{Connector._makeTransport} and the
module-level C{tcp.Client} it instantiates, and the connector's
C{timeoutID} (what L{connectTCP} arms on another clock: C{timeoutClock}).  L{SURFACE} checks them; when
it fails nothing here is used and Twisted's transports are.

L{DirectClient} connects to an IP address in the turn it is asked to:
Twisted's C{Client} schedules the connect a reactor turn later
(C{callLater(0)}) and passes the address through a Deferred even when it
needs no resolving; and once the connect has ended it reads C{SO_ERROR} only,
where Twisted calls C{connect()} a second time.  Its private surface
(C{_finishInit}, C{_setRealAddress}, C{_requiresResolution},
C{_commonConnection}, C{doConnect}'s C{doRead}/C{doWrite}, C{_connectDone}) is checked by
L{CONNECT_SURFACE}; when that fails, L{connectTCP} uses L{EagerConnector}.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import abstract, base, error, main, tcp

from tlsfast._foreign import TWISTED_TESTED, Surface, missingAssignments, missingAttributes, missingParameters

# Captured at import, before installEagerWrites() can rebind them.
StockClient = tcp.Client
StockServer = tcp.Server


def check() -> Surface:
    """Check the names this module uses (at import: L{SURFACE})."""
    return Surface("twisted.internet.tcp write queue", "Twisted", TWISTED_TESTED).require(
        missingAttributes(StockServer, ("dataBuffer", "offset", "_writeDisconnecting", "disconnecting", "connected",
                                        "_aborting", "bufferSize", "TLS")),
        missingParameters(tcp.Connection, "doRead", ("self",)),
        missingAttributes(main, ("CONNECTION_DONE", "CONNECTION_LOST")),
        missingAssignments(abstract.FileDescriptor.__init__, ("_tempDataBuffer",)),
        missingParameters(tcp.Connector, "_makeTransport", ("self",)),
        missingAssignments(base.BaseConnector.connect, ("timeoutID",)),
        missingParameters(base.BaseConnector, "cancelTimeout", ("self",)),
        [] if tcp.Port.transport in (StockServer, EagerServer) else ["tcp.Port.transport is not tcp.Server"],
    )


class _EagerWrite(tcp.Connection):
    def write(self, data: bytes) -> None:
        # After abortConnection (_aborting) Twisted drops what is written: so do we.
        if (data and self.connected and not self.disconnecting and not self._aborting
                and not self._writeDisconnecting
                and not self._tempDataBuffer and self.offset == len(self.dataBuffer)
                and type(data) is bytes):
            try:
                sent = self.socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # the queued path meets the error in doWrite, as usual
            if sent == len(data):
                return
            data = data[sent:]
        super().write(data)


class EagerServer(_EagerWrite, StockServer):
    """An accepted connection with eager writes."""


class EagerClient(_EagerWrite, StockClient):
    """An outgoing connection with eager writes."""


class EagerConnector(tcp.Connector):
    """C{reactor.connectTCP}, with an L{EagerClient} transport."""

    def _makeTransport(self) -> EagerClient:
        return EagerClient(self.host, self.port, self.bindAddress, self, self.reactor)


class DirectClient(EagerClient):
    """
    An L{EagerClient} that, to an IP address, connects when told
    (L{connectNow}) rather than a reactor turn later.  A host name takes
    Twisted's way (resolved a turn later).
    """

    _waiting = False
    _connectStarted = False  # doConnect's first call is made

    def _finishInit(self, whenDone: Any, skt: Any, error: Any, reactor: Any) -> None:
        if whenDone and not self._requiresResolution:
            self._commonConnection.__init__(self, skt, None, reactor)  # type: ignore[arg-type]  # as Twisted's _finishInit: the protocol comes with the connect
            self._waiting = True
        else:
            super()._finishInit(whenDone, skt, error, reactor)

    def connectNow(self) -> None:
        """Start the connect (once); its outcome reaches the connector as usual."""
        if self._waiting:
            self._waiting = False
            self._setRealAddress(self.addr)

    def doConnect(self) -> None:
        """
        Twisted's C{doConnect}, without what its second call repeats.  Its
        first call starts the connect (reading and writing watched until it
        ends); the second comes when the socket is ready, and the connect has
        then ended: C{SO_ERROR} says how (as Twisted checks first).  Twisted
        then calls C{connect()} again (its comments say it need not) and
        stops reading only to start again; here reading stays on.
        """
        if not self._connectStarted:
            self._connectStarted = True
            super().doConnect()
            return
        if not hasattr(self, "connector"):
            return  # (failed meanwhile: Twisted's check)
        err = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.failIfNotConnected(error.getConnectError((err, os.strerror(err))))
            return
        del self.doWrite  # the instance's doConnect (the first call set both)
        del self.doRead
        self.stopWriting()
        self._connectDone()  # (which starts reading: it already is)


class DirectConnector(EagerConnector):
    """
    An L{EagerConnector} whose connect starts in C{connect()} (a
    L{DirectClient}), timed out by C{timeoutClock}.  Success or failure may
    so be reported before C{connect()} returns.
    """

    def __init__(self, host: str, port: int, factory: Any, timeout: float | None, bindAddress: Any,
                 reactor: Any, timeoutClock: Any) -> None:
        super().__init__(host, port, factory, None, bindAddress, reactor)  # type: ignore[arg-type]  # None: no timeout on the reactor (Twisted tests for None)
        self.connectTimeout = timeout
        self.timeoutClock = timeoutClock

    def _makeTransport(self) -> DirectClient:
        self.directTransport = DirectClient(self.host, self.port, self.bindAddress, self, self.reactor)
        return self.directTransport

    def connect(self) -> None:
        super().connect()
        _armTimeout(self, self.timeoutClock, self.connectTimeout)
        self.directTransport.connectNow()


def _armTimeout(connector: Any, clock: Any, timeout: float | None) -> None:
    """What C{BaseConnector.connect} does with its timeout, on C{clock}."""
    if timeout is not None:
        connector.timeoutID = clock.callLater(timeout, _timedOut, connector.transport)


def _timedOut(transport: Any) -> None:
    # The error is made when the connect times out, not for every connect.
    transport.failIfNotConnected(error.TimeoutError())


def checkConnect() -> Surface:
    """Check the names L{DirectClient} uses (at import: L{CONNECT_SURFACE})."""
    return Surface("twisted.internet.tcp connect", "Twisted", TWISTED_TESTED).require(
        missingParameters(tcp.BaseClient, "_finishInit", ("self", "whenDone", "skt", "error", "reactor")),
        missingParameters(tcp.BaseClient, "_setRealAddress", ("self", "address")),
        missingAttributes(tcp.BaseClient, ("_commonConnection", "failIfNotConnected")),
        missingAssignments(tcp._BaseTCPClient.__init__, ("_requiresResolution", "addr", "connector")),
        missingParameters(tcp.BaseClient, "doConnect", ("self",)),
        missingParameters(tcp.BaseClient, "_connectDone", ("self",)),
        missingAssignments(tcp.BaseClient.doConnect, ("doWrite", "doRead")),
    )


SURFACE = check()
CONNECT_SURFACE = checkConnect()
MORE_SURFACES = ("CONNECT_SURFACE",)  # (for tlsfast info, through surfaces())

# How tlsfast._engine's socket ends (RecordLoop, PlainRelay) tell that a TCP
# transport's write queue is empty, so that they may send() at once: each
# WRITABLE attribute true, each QUEUED attribute false, and
# len(dataBuffer) == offset (as _EagerWrite.write).
WRITABLE = ("connected",)
QUEUED = ("_tempDataBuffer", "disconnecting", "_writeDisconnecting", "_aborting")
READS_PER_EVENT = 4


def attachSocketEnd(transport: Any, protocol: object, end: Any) -> bool:
    """
    Let C{end} (a L{tlsfast._engine.SocketEnd}: a TLS protocol's
    C{RecordLoop} or a relay's C{PlainRelay}) read C{transport}'s socket and
    write to it while its queue is empty: it becomes the transport's
    C{doRead}.  Only for a C{twisted.internet.tcp} connection whose protocol
    is C{protocol} and whose C{doRead} is Twisted's (no TLS of its own, no
    override).

    @return: whether it did.
    """
    if (not SURFACE.usable or not isinstance(transport, tcp.Connection)
            or type(transport).doRead is not tcp.Connection.doRead
            or "doRead" in transport.__dict__ or transport.TLS
            or getattr(transport, "protocol", None) is not protocol):
        return False
    # One read event takes up to READS_PER_EVENT of Twisted's reads at once
    # (256 KiB by default, the end's buffer): fewer events per MiB.
    end.use_socket(transport, transport.fileno(), READS_PER_EVENT * transport.bufferSize, WRITABLE, QUEUED,
                   "dataBuffer", "offset", main.CONNECTION_DONE, main.CONNECTION_LOST)
    transport.doRead = end.doRead  # type: ignore[method-assign]  # this one connection reads through it
    return True


def connectTCP(reactor: Any, host: str, port: int, factory: Any, timeout: float = 30,
               bindAddress: Any = None, timeoutClock: Any = None) -> Any:
    """
    C{reactor.connectTCP} with eager writes where the reactor is one whose
    TCP transports are C{twisted.internet.tcp}'s (else the plain call).

    @param timeoutClock: what to time the connect out with, if not
        C{reactor} (an C{IReactorTime}; the proxy's deadline sweep).  The
        connector cancels it as it would its own C{callLater}.
    """
    if not SURFACE.usable or not hasattr(reactor, "addReader"):
        return reactor.connectTCP(host, port, factory, timeout=timeout, bindAddress=bindAddress)
    if timeoutClock is None:
        connector = EagerConnector(host, port, factory, timeout, bindAddress, reactor)
        connector.connect()
    elif CONNECT_SURFACE.usable:
        connector = DirectConnector(host, port, factory, timeout, bindAddress, reactor, timeoutClock)
        connector.connect()
    else:
        connector = EagerConnector(host, port, factory, None, bindAddress, reactor)  # type: ignore[arg-type]  # None: as above
        connector.connect()
        # The connect itself starts a reactor turn later: nothing can have failed or succeeded yet.
        _armTimeout(connector, timeoutClock, timeout)
    return connector


def useEagerServers(port: object) -> bool:
    """
    Make the connections C{port} (a C{tcp.Port}) accepts from now on
    eager-writing.  Returns whether it did.
    """
    if SURFACE.usable and isinstance(port, tcp.Port):
        port.transport = EagerServer
        return True
    return False


def installEagerWrites() -> bool:
    """
    Make every TCP connection the reactor makes from now on (C{listenTCP},
    C{connectTCP} and everything built on them) eager-writing.

    @return: whether it did (not where L{SURFACE} is unusable).
    """
    if not SURFACE.usable:
        return False
    tcp.Port.transport = EagerServer
    tcp.Client = EagerClient  # type: ignore[misc]  # what Connector._makeTransport instantiates
    return True


def uninstallEagerWrites() -> None:
    """Undo L{installEagerWrites} (connections already made keep theirs)."""
    tcp.Port.transport = StockServer
    tcp.Client = StockClient  # type: ignore[misc]  # rebinding Twisted's class name


def eagerWritesInstalled() -> bool:
    return tcp.Port.transport is EagerServer
