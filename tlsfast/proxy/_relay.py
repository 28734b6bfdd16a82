"""
The data path: a client connection (L{Frontend}) relayed to one backend
connection (L{Backend}), plaintext in the middle.

Theory of operation
===================

The connection's life (states, events, the one close reason, deadlines) is
the table in L{tlsfast.proxy._lifecycle}.  The classes here are its
adapters: L{Frontend} owns the L{Lifecycle}; its Twisted callbacks, and
its L{Backend}'s, become events; it performs the actions that come back.

- The backend is dialled only once the client's TLS handshake is complete
  (a client that sends garbage, or never finishes, never costs a backend
  connection).  While the backend is being reached, the client's transport
  is paused; bytes already received wait in C{pending}.
- Flow control: each protocol is registered as the streaming producer of
  the I{other} side's transport.  When a transport's write buffer fills,
  Twisted pauses its producer, which pauses reading on the side that feeds
  it; so a slow reader slows the writer down instead of the proxy
  buffering without bound.
- Half-close: a plain TCP side that sends FIN (C{readConnectionLost}) has
  finished sending, not receiving.  The end of stream is passed on (a FIN
  to a plain peer, a close_notify to a TLS one, after what is buffered) and
  the other direction keeps flowing, so an C{nc -N}-style client still gets
  its response.  Twisted's TLS closes the whole connection on a
  close_notify, so a TLS side has no half-close: its end is C{connectionLost}.
- Close: when a side is lost, the other is unregistered as producer
  (Twisted's TLS waits for that before it sends close_notify) and closed
  with C{loseConnection}, which flushes what is buffered first; its
  reading is resumed so that the peer's own close is seen, and what it
  sends meanwhile is dropped.  The close deadline (C{close_timeout}) aborts
  both sides of a close that does not finish.  Producer C{stopProducing} is
  deliberately a no-op: Twisted calls it when a transport dies, and
  closing the peer there would skip the TLS close_notify.
"""

from __future__ import annotations

import itertools
from typing import Any

from cryptography.x509.oid import NameOID
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IHandshakeListener,
    IOpenSSLServerConnectionCreator,
    IPushProducer,
)
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsfast import ACCELERATED
from tlsfast._addresses import describeAddress, hostPort
from tlsfast._foreign import twistedtcp
from tlsfast.options import ClientOptions, ServerOptions, connectionInfo
from tlsfast.proxy._deadlines import Deadline, deadlinesFor
from tlsfast.proxy._eager import abort as abortTransport
from tlsfast.proxy._eager import connectTCP as eagerConnectTCP
from tlsfast.proxy._lifecycle import Action, Event, Lifecycle, Reason
from tlsfast.proxy._metrics import ListenerStats, backendErrorReason, handshakeFailureReason
from tlsfast.proxy._proxyheader import ClientTLS, headerV1, headerV2
from tlsfast.proxy._ticketkeys import processTicketKeys


def _plainRelayClass() -> Any:
    """tlsfast._engine.PlainRelay, or None where the engine cannot load (Python relays every chunk)."""
    if not ACCELERATED:
        return None
    from tlsfast._engine import PlainRelay

    return PlainRelay


_PlainRelay = _plainRelayClass()

_connectionIds = itertools.count(1)


def _setNoDelay(transport) -> None:
    """TCP_NODELAY on the socket under C{transport} (a TLS wrapper or TCP)."""
    # Without it a request/response through a relay stalls ~40 ms (Nagle +
    # delayed ACK, measured: 169 handshakes/s with the CPUs mostly idle).
    while transport is not None and not hasattr(transport, "setTcpNoDelay"):
        transport = getattr(transport, "transport", None)
    if transport is not None:
        try:
            transport.setTcpNoDelay(True)
        except OSError:
            pass


def _reasonText(reason) -> str:
    if isinstance(reason, Failure):
        reason = reason.value
    text = str(reason).strip() or type(reason).__name__
    return " ".join(text.split())[:300]


def _discard(data: bytes) -> None:
    pass  # what a side sends before it is wired to its peer, or after: nowhere to go


def _socketEnd(side: _Side) -> Any:
    """
    The compiled end of C{side}'s connection (L{tlsfast._engine.SocketEnd})
    that can relay to another in C, or L{None}: a tlsfast TLS transport's
    record loop, or, for plain TCP, a L{PlainRelay} made to read its socket.
    """
    transport = side.transport
    getRecordLoop = getattr(transport, "getRecordLoop", None)
    if getRecordLoop is not None:
        return getRecordLoop()
    if _PlainRelay is None:
        return None
    end = _PlainRelay(side)
    return end if twistedtcp.attachSocketEnd(transport, side, end) else None


def _writer(transport):
    """
    How to relay to C{transport}: tlsfast's TLS transports can send at once
    (C{writeNow}); Twisted's would hold each chunk for a reactor turn to
    aggregate small writes, which a relay's whole chunks do not need.
    """
    return getattr(transport, "writeNow", transport.write)


@implementer(IPushProducer, IHalfCloseableProtocol)
class _Side(Protocol):
    """
    What both sides share: byte counts, being the other's producer, and the
    two ways of ending one side.  Their events go to the L{Frontend}'s
    lifecycle, which decides.
    """

    # Once connected: a TCP or TLS transport, which is also an IPushProducer,
    # an IConsumer and half-closeable (zope interfaces have no intersection type).
    transport: Any
    # The other side, from _wire() on (the lifecycle never acts on it before).
    peer: Any = None
    isTLS = False
    # The compiled socket end that relays this side's bytes to the peer's in
    # C, from _wire() on when both sides have one (None: toPeer relays them).
    end: Any = None

    def __init__(self):
        self._bytesIn = 0
        self._lastActivity = 0.0
        self.toPeer = _discard

    @property
    def bytesIn(self) -> int:
        """Bytes received on this side (those relayed in C included)."""
        end = self.end
        return self._bytesIn if end is None else self._bytesIn + end.relayed

    @property
    def lastActivity(self) -> float:
        """When this side last received bytes (or was set up)."""
        end = self.end
        return self._lastActivity if end is None else max(self._lastActivity, end.last_relayed)

    @lastActivity.setter
    def lastActivity(self, when: float) -> None:
        self._lastActivity = when

    def _isOpen(self) -> bool:
        raise NotImplementedError()

    # IPushProducer, for the other side's transport.
    def pauseProducing(self):
        if self._isOpen():
            self.transport.pauseProducing()

    def resumeProducing(self):
        if self._isOpen():
            self.transport.resumeProducing()

    def stopProducing(self):
        pass  # see the module docstring: closing is the lifecycle's job

    def _wire(self, other: _Side) -> None:
        self.peer, other.peer = other, self
        self.toPeer, other.toPeer = _writer(other.transport), _writer(self.transport)
        self.transport.registerProducer(other, True)
        other.transport.registerProducer(self, True)
        mine, theirs = _socketEnd(self), _socketEnd(other)
        if mine is not None and theirs is not None:
            # Plaintext moves between the two in C from now on; flow control
            # stays the producers' (what a socket does not take goes through
            # the transport's write(), which pauses them).
            self.end, other.end = mine, theirs
            mine.relay_to(theirs)
            theirs.relay_to(mine)

    def readConnectionLost(self):
        raise NotImplementedError()

    def writeConnectionLost(self):
        pass  # our FIN is out; the peer's FIN or connectionLost finishes

    def _endWrites(self) -> None:
        """No more bytes for this side: FIN (plain) or close_notify (TLS), after the buffer."""
        self.transport.unregisterProducer()  # the ended side produced for us
        if self.isTLS:
            # Twisted's loseConnection sends close_notify and goes on
            # reading until the peer's own close_notify, which is the
            # half-close TLS offers.
            self.transport.loseConnection()
        else:
            self.transport.loseWriteConnection()

    def _close(self) -> None:
        """
        Close after what is buffered.  Reading is resumed (it may have been
        paused for flow control or while dialling): a TLS peer's reply to our
        close_notify, or a plain peer's RST, must be seen; what it sends
        meanwhile is dropped.
        """
        self.toPeer = _discard  # what it sends from now on is not relayed (nor buffered)
        if self.end is not None:
            self.end.relay_to(None)  # ... by the compiled relay either: it comes to dataReceived
        self.transport.unregisterProducer()  # a no-op when none is registered
        self.transport.resumeProducing()
        self.transport.loseConnection()


class Frontend(_Side):
    """
    A client connection: dials the backend and relays to it.  It owns the
    connection's L{Lifecycle}: its own and its backend's Twisted callbacks
    become events, and it performs the actions the lifecycle returns.
    """

    def __init__(self, listener: Listener):
        super().__init__()
        self.listener = listener
        self.id = next(_connectionIds)
        self.lifecycle = Lifecycle()
        self.pending: list[bytes] | None = []  # from the client, until the backend is ready
        self.backendConnector: Any = None  # the IConnector dialling the backend
        self.backendAddress = listener.config.backendAddress
        deadlines = deadlinesFor(listener.reactor)
        self.idleDeadline = Deadline(deadlines, self._idleCheck)
        self.deadline = Deadline(deadlines, self._deadlineExpired)  # the close or drain deadline ...
        self.deadlineEvent: Event | None = None  # ... and the event it sends
        self.drainAt = 0.0
        self.clientCertificateSubject = self.clientCertificateCN = None
        self.tlsInfo = None  # the client's TLS, once its handshake is done
        self.clientError = None  # how the client connection ended, if on its own
        self.backendError: str | None = None  # how the backend connection ended, if on its own and not cleanly
        self.clientAddress = None
        self.opened = 0.0

    def log(self, level, event, **fields):
        self.listener.log(level, event, listener=self.listener.config.name, conn=self.id, **fields)

    def _isOpen(self) -> bool:
        return self.lifecycle.clientOpen

    def _handle(self, event: Event, failure: Failure | None = None) -> None:
        """Give C{event} to the lifecycle; perform what it says."""
        for action in self.lifecycle.handle(event):
            _PERFORM[action](self, failure)

    # -- Twisted's callbacks, and the backend's, as events ---------------------

    def connectionMade(self):
        _setNoDelay(self.transport)
        self.listener.connectionOpened(self)
        self.clientAddress = describeAddress(self.transport.getPeer())
        if self.listener.log.debugEnabled:
            self.log("debug", "accept", client=self.clientAddress)
        self.lastActivity = self.opened = self.listener.reactor.seconds()
        self.idleDeadline.arm(self.opened + self.listener.config.idle_timeout)
        self._handle(Event.ACCEPT_TLS if self.listener.tlsFront else Event.ACCEPT_PLAIN)

    def dataReceived(self, data):
        self._bytesIn += len(data)
        self.lastActivity = self.listener.reactor.seconds()
        if self.pending is not None:
            self.pending.append(data)
        else:
            self.toPeer(data)

    def readConnectionLost(self):
        self._handle(Event.CLIENT_FIN)

    def connectionLost(self, reason):
        self._handle(Event.CLIENT_LOST, reason)

    def backendReady(self, backend: Backend) -> None:
        self.peer = backend
        self._handle(Event.BACKEND_READY)

    def backendFailed(self, reason) -> None:
        """The backend could not be reached (or its TLS handshake failed)."""
        self._handle(Event.BACKEND_FAILED, reason)

    def _idleCheck(self):
        last = max(self.lastActivity, self.peer.lastActivity if self.peer else 0.0)
        idleUntil = last + self.listener.config.idle_timeout
        if idleUntil > self.listener.reactor.seconds():
            self.idleDeadline.arm(idleUntil)
            return
        self.log("info", "idle_timeout", seconds=self.listener.config.idle_timeout)
        self._handle(Event.IDLE_TIMEOUT)

    def drain(self, deadline: float) -> None:
        """SIGTERM: this connection may finish until C{deadline} (reactor time), then it is aborted."""
        self.drainAt = deadline
        self._handle(Event.DRAIN)

    def _deadlineExpired(self) -> None:
        assert self.deadlineEvent is not None  # armed together with the deadline
        self._handle(self.deadlineEvent)

    # -- the actions ------------------------------------------------------------

    def _dial(self, failure) -> None:
        # Reading resumes once the backend is ready (RELAY).
        self.transport.pauseProducing()
        self.backendConnector = self.listener.connectBackend(self)

    def _cancelDial(self, failure) -> None:
        self.backendConnector.disconnect()  # its failure (BACKEND_FAILED) follows

    def _relay(self, failure) -> None:
        backend = self.peer
        backend.frontend = self
        pending, self.pending = self.pending, None
        if pending:
            backend.transport.write(b"".join(pending))
        self._wire(backend)
        if self.listener.log.debugEnabled:
            info = connectionInfo(backend.transport) if self.listener.tlsBack else None
            self.log("debug", "backend_ready", backend=hostPort(*self.backendAddress),
                     tls_version=info.version if info else None, alpn=info.alpn if info else None,
                     relay="python" if self.end is None else "compiled")

    def _resumeClient(self, failure) -> None:
        self.transport.resumeProducing()

    def _endClientWrites(self, failure) -> None:
        self._endWrites()

    def _endBackendWrites(self, failure) -> None:
        self.peer._endWrites()

    def _closeClient(self, failure) -> None:
        self.pending = None  # nothing more goes to a backend from here
        self._close()

    def _closeBackend(self, failure) -> None:
        self.peer._close()

    def _reportBackendFailed(self, failure) -> None:
        why = backendErrorReason(failure)
        self.listener.stats.backendErrors[why] += 1
        self.log("warn", "backend_failed", backend=hostPort(*self.backendAddress), reason=why,
                 error=_reasonText(failure))

    def _noteClientError(self, failure) -> None:
        self.clientError = failure

    def _noteBackendError(self, failure) -> None:
        # (A TLS 1.3 backend refusing our client certificate says so only
        # now, after its handshake looked complete.)
        self.backendError = _closeError(failure)

    def _arm(self, delay: float, event: Event) -> None:
        """The deadline: C{event} after C{delay} seconds, unless one is armed sooner."""
        at = self.listener.reactor.seconds() + delay
        armed = self.deadline.at
        if armed is not None and armed <= at:
            return
        self.deadlineEvent = event
        self.deadline.arm(at)

    def _armCloseDeadline(self, failure) -> None:
        self.idleDeadline.disarm()  # the close deadline replaces it
        self._arm(self.listener.config.close_timeout, Event.CLOSE_DEADLINE)

    def _armDrainDeadline(self, failure) -> None:
        self._arm(self.drainAt - self.listener.reactor.seconds(), Event.DRAIN_DEADLINE)

    def _abort(self, failure) -> None:
        self.idleDeadline.disarm()
        if self.lifecycle.clientOpen:
            abortTransport(self.transport)
        if self.peer is not None:
            if self.lifecycle.backendOpen:
                abortTransport(self.peer.transport)
        elif self.backendConnector is not None:
            _abortDial(self.backendConnector)

    def _finish(self, failure) -> None:
        """Both sides are gone: the slot back, the counters, the one close line."""
        self.idleDeadline.disarm()
        self.deadline.disarm()
        self.listener.connectionClosed(self)
        by = self.lifecycle.reason
        stats = self.listener.stats
        handshakeFailure = None
        if by == Reason.HANDSHAKE_FAILED:
            info = connectionInfo(self.transport)
            handshakeFailure = handshakeFailureReason(self.clientError,
                                                      info is not None and info.handshakeTimedOut)
            stats.handshakeFailures[handshakeFailure] += 1
        fromClient = self.bytesIn
        fromBackend = self.peer.bytesIn if self.peer else 0
        stats.closes[by] += 1
        stats.closedBytesFromClients += fromClient
        stats.closedBytesFromBackends += fromBackend
        # The one line per connection at the default level: what it was, how it ended.
        tls = self.tlsInfo
        aborted = self.lifecycle.aborted
        self.log("info", "close", by=by, aborted=aborted, failure=handshakeFailure,
                 error=_closeError(self.clientError) if self.clientError is not None else None,
                 client=self.clientAddress,
                 sni=tls.serverName if tls else None, tls_version=tls.version if tls else None,
                 cipher=tls.cipher if tls else None, alpn=tls.alpn if tls else None,
                 resumed=tls.resumed if tls else None, client_cert=self.clientCertificateSubject,
                 backend=hostPort(*self.backendAddress) if self.peer is not None else None,
                 backend_error=self.backendError,
                 seconds=f"{self.listener.reactor.seconds() - self.opened:.3f}",
                 bytes_from_client=fromClient, bytes_from_backend=fromBackend)


_PERFORM = {
    Action.DIAL: Frontend._dial,
    Action.CANCEL_DIAL: Frontend._cancelDial,
    Action.RELAY: Frontend._relay,
    Action.RESUME_CLIENT: Frontend._resumeClient,
    Action.END_CLIENT_WRITES: Frontend._endClientWrites,
    Action.END_BACKEND_WRITES: Frontend._endBackendWrites,
    Action.CLOSE_CLIENT: Frontend._closeClient,
    Action.CLOSE_BACKEND: Frontend._closeBackend,
    Action.REPORT_BACKEND_FAILED: Frontend._reportBackendFailed,
    Action.NOTE_CLIENT_ERROR: Frontend._noteClientError,
    Action.NOTE_BACKEND_ERROR: Frontend._noteBackendError,
    Action.ARM_CLOSE_DEADLINE: Frontend._armCloseDeadline,
    Action.ARM_DRAIN_DEADLINE: Frontend._armDrainDeadline,
    Action.ABORT: Frontend._abort,
    Action.FINISH: Frontend._finish,
}
assert set(_PERFORM) == set(Action), "every action of the lifecycle is performed"


def _abortDial(connector) -> None:
    """Give up on a backend connection under way at once, sending nothing more."""
    if connector.state == "connecting":
        connector.stopConnecting()  # its failure (BACKEND_FAILED) follows
    elif connector.transport is not None:
        connector.transport.abortConnection()


def _closeError(reason) -> str | None:
    # isinstance, not Failure.check: the same answer without its walk of qualified names.
    if isinstance(reason.value, ConnectionDone):
        return None
    return _reasonText(reason)


class Backend(_Side):
    """The connection to the backend, owned by one L{Frontend}."""

    def __init__(self, frontend: Frontend):
        super().__init__()
        self.frontend = frontend

    def _isOpen(self) -> bool:
        return self.frontend.peer is self and self.frontend.lifecycle.backendOpen

    def connectionMade(self):
        _setNoDelay(self.transport)
        if not self.isTLS:
            self._ready()  # a TLS backend is ready at handshakeCompleted

    def _ready(self):
        self.lastActivity = self.frontend.listener.reactor.seconds()
        self.frontend.backendReady(self)

    def dataReceived(self, data):
        self._bytesIn += len(data)
        self.lastActivity = self.frontend.listener.reactor.seconds()
        self.toPeer(data)

    def readConnectionLost(self):
        self.frontend._handle(Event.BACKEND_FIN)

    def connectionLost(self, reason):
        if self.frontend.peer is self:
            self.frontend._handle(Event.BACKEND_LOST, reason)
        else:  # lost before it was ready
            self.frontend.backendFailed(reason)


@implementer(IHandshakeListener)
class TLSBackend(Backend):
    """A backend reached over TLS: ready once its certificate is verified."""

    isTLS = True

    def handshakeCompleted(self):
        self._ready()


@implementer(IHandshakeListener)
class TLSFrontend(Frontend):
    """A client over TLS: the backend is dialled after the handshake."""

    isTLS = True

    def handshakeCompleted(self):
        info = connectionInfo(self.transport)
        certificate = self.transport.getPeerCertificate()  # verified, or the handshake failed
        if certificate is not None:
            subject = certificate.to_cryptography().subject
            self.clientCertificateSubject = subject.rfc4514_string()
            names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            self.clientCertificateCN = str(names[0].value) if names else ""
        self.listener.stats.handshakes += 1
        self.tlsInfo = info
        if self.listener.log.debugEnabled:
            self.log("debug", "handshake", tls_version=info.version, cipher=info.cipher,
                     sni=info.serverName, alpn=info.alpn, resumed=info.resumed,
                     client_cert=self.clientCertificateSubject)
        self._handle(Event.HANDSHAKE_DONE)


class _HeaderFirstFactory(ClientFactory):
    """
    Wraps a backend factory so that C{header} (PROXY protocol) is the first
    thing on the TCP connection, before the wrapped protocol, TLS
    included, writes anything.
    """

    noisy = False

    def __init__(self, wrapped, header: bytes):
        self.wrapped = wrapped
        self.header = header

    def buildProtocol(self, addr):
        protocol = self.wrapped.buildProtocol(addr)
        makeConnection = protocol.makeConnection

        def makeConnectionAfterHeader(transport):
            transport.write(self.header)
            makeConnection(transport)

        # An instance attribute, read once by the TCP connector: no wrapper
        # protocol sits in the data path afterwards.
        protocol.makeConnection = makeConnectionAfterHeader
        return protocol

    def startedConnecting(self, connector):
        self.wrapped.startedConnecting(connector)

    def clientConnectionFailed(self, connector, reason):
        self.wrapped.clientConnectionFailed(connector, reason)

    def clientConnectionLost(self, connector, reason):
        self.wrapped.clientConnectionLost(connector, reason)


class _BackendFactory(ClientFactory):
    noisy = False  # one factory per backend connection: no "Starting factory" log per connection

    def __init__(self, frontend: Frontend, tls: bool):
        self.frontend = frontend
        self.tls = tls

    def buildProtocol(self, addr):
        protocol = (TLSBackend if self.tls else Backend)(self.frontend)
        protocol.factory = self
        return protocol

    def clientConnectionFailed(self, connector, reason):
        self.frontend.backendFailed(reason)


class ListenerTLS:
    """
    The TLS settings of one listener configuration: the server options
    towards clients and the client options towards the backend, built (and
    so checked: files, keys, policies) before anything uses them.  A reload
    builds a new one and swaps it in only if that succeeds.
    """

    def __init__(self, config, reactor):
        from tlsfast.proxy._config import TLS_BACK, TLS_FRONT

        self.config = config
        self.reactor = reactor
        # The handshake timeouts on the proxy's deadline sweep, not a callLater each.
        self.timeoutClock = deadlinesFor(reactor) if reactor is not None else None
        alpn = [p.encode() for p in config.alpnProtocols] or None
        self.serverOptions = None
        if TLS_FRONT[config.mode]:
            self.serverOptions = ServerOptions(
                config.cert, config.key, acceptableProtocols=alpn, serverNames=dict(config.sniCertificates) or None,
                clientCertificate=config.clientCertificatePolicy, caFile=config.client_ca,
                minimumVersion=config.min_version, ciphers=config.ciphers, tls13Ciphers=config.tls13_ciphers,
                groups=config.groups, handshakeTimeout=config.handshakeTimeout, reactor=self.timeoutClock,
                keyLogFile=config.keyLogFile or False,  # never SSLKEYLOGFILE: only an explicit --keylog
                sessionTickets=True if config.session_tickets is None else config.session_tickets,
                ticketKeys=processTicketKeys() if config.session_tickets != 0 else None)
        self._clientOptions: dict = {}
        if TLS_BACK[config.mode]:
            self.clientOptionsFor(None if config.mode == "reencrypt" else alpn)  # checked now

    def clientOptionsFor(self, alpn):
        # One ClientOptions (one Context, one session cache) per ALPN offer:
        # in reencrypt mode the backend is offered what the client chose.
        key = tuple(alpn) if alpn else ()
        options = self._clientOptions.get(key)
        if options is None:
            options = self._clientOptions[key] = ClientOptions(
                self.config.backendServerName, caFile=self.config.backend_ca,
                trustRoot="platform", acceptableProtocols=list(key) or None,
                clientCertificate=self.config.backend_cert, clientKey=self.config.backend_key,
                handshakeTimeout=self.config.backendHandshakeTimeout, reactor=self.timeoutClock,
                keyLogFile=self.config.keyLogFile or False)
        return options


@implementer(IOpenSSLServerConnectionCreator)
class _CurrentServerOptions:
    """
    What the listening TLS factory is given: new connections get the
    listener's server options of the moment, so a reload changes
    certificates without touching the listening socket.
    """

    def __init__(self, listener: Listener):
        self.listener = listener

    def serverConnectionForTLS(self, tlsProtocol):
        return self.listener.tls.serverOptions.serverConnectionForTLS(tlsProtocol)


class Listener(Factory):
    """
    One listening address: builds L{Frontend}s, dials backends, counts
    connections and pauses accepting at C{max_connections}.
    """

    def __init__(self, config, reactor, log, tls: ListenerTLS | None = None):
        from tlsfast.proxy._config import TLS_BACK, TLS_FRONT

        self.reactor = reactor
        self.log = log
        self.tlsFront = TLS_FRONT[config.mode]
        self.tlsBack = TLS_BACK[config.mode]
        self.connections: set[Frontend] = set()
        self.awaitingHeader: set = set()  # accept_proxy: connections still reading their PROXY header
        self.stats = ListenerStats()
        self.port: Any = None  # the listening port, once listening
        self.acceptPaused = False
        self.stopping = False
        self.update(config, tls or ListenerTLS(config, reactor))

    def update(self, config, tls: ListenerTLS) -> None:
        """New settings (same address and mode) for connections from now on."""
        self.config = config
        self.tls = tls
        if self.port is not None and not self.stopping:
            self._checkAccepting()

    def buildProtocol(self, addr):
        protocol = (TLSFrontend if self.tlsFront else Frontend)(self)
        protocol.factory = self
        return protocol

    def wrapped(self):
        """
        The factory to listen with: this one, under TLS when the mode says so,
        under a PROXY header reader with C{accept_proxy}.
        """
        factory = self
        if self.tlsFront:
            from twisted.protocols import tls  # after tlsfast.twisted.install(): the engine's

            factory = tls.TLSMemoryBIOFactory(_CurrentServerOptions(self), False, self)
        if self.config.accept_proxy:
            from tlsfast.proxy._acceptproxy import ProxyHeaderFactory

            factory = ProxyHeaderFactory(factory, self)
        return factory

    # -- accept_proxy: connections reading their PROXY header ------------------

    def headerWaitStarted(self, receiver) -> None:
        self.awaitingHeader.add(receiver)
        self._checkAccepting()

    def headerWaitEnded(self, receiver) -> None:
        self.awaitingHeader.discard(receiver)
        if not self.stopping:
            self._checkAccepting()

    def proxyHeaderFailed(self, receiver, why: str) -> None:
        self.stats.connections += 1
        self.stats.closes["proxy_header_failed"] += 1
        frontend = receiver.wrappedProtocol
        frontend = getattr(frontend, "wrappedProtocol", frontend)  # under TLS
        self.log("info", "close", listener=self.config.name, conn=getattr(frontend, "id", None),
                 by="proxy_header_failed", error=why, client=describeAddress(receiver.transport.getPeer()))

    def abortAwaitingHeader(self) -> None:
        for receiver in list(self.awaitingHeader):
            receiver.transport.abortConnection()

    def connectBackend(self, frontend: Frontend):
        info = frontend.tlsInfo  # the client's TLS, from its handshake (the dial follows it); None if plain
        negotiated = info.alpn if info is not None else None  # bytes or None
        host, port = frontend.backendAddress = self.config.backendFor(
            info.serverName if info is not None else None,
            negotiated.decode("ascii", "replace") if negotiated else None)
        factory: ClientFactory[Any] = _BackendFactory(frontend, self.tlsBack)
        if self.tlsBack:
            from twisted.protocols import tls

            if self.config.mode == "reencrypt":
                alpn = [negotiated] if negotiated else None
            else:
                alpn = [p.encode() for p in self.config.alpnProtocols] or None
            factory = tls.TLSMemoryBIOFactory(self.tls.clientOptionsFor(alpn), True, factory)
            factory.noisy = False
        if self.config.proxy_protocol:
            factory = _HeaderFirstFactory(factory, self._proxyHeader(frontend, info))
        return eagerConnectTCP(self.reactor, host, port, factory, self.config.connectTimeout,
                               timeoutClock=deadlinesFor(self.reactor))

    def _proxyHeader(self, frontend: Frontend, info) -> bytes:
        peer, local = frontend.transport.getPeer(), frontend.transport.getHost()
        source = (getattr(peer, "host", ""), getattr(peer, "port", 0))
        destination = (getattr(local, "host", ""), getattr(local, "port", 0))
        if self.config.proxy_protocol == "v1":
            return headerV1(source, destination)
        tls = None
        if info is not None:
            tls = ClientTLS(version=info.version, cipher=info.cipher, serverName=info.serverName,
                            alpn=info.alpn, certificateCN=frontend.clientCertificateCN)
        return headerV2(source, destination, tls)

    def connectionOpened(self, frontend: Frontend) -> None:
        self.connections.add(frontend)
        self.stats.connections += 1
        self._checkAccepting()

    def connectionClosed(self, frontend: Frontend) -> None:
        self.connections.discard(frontend)
        if not self.stopping:
            self._checkAccepting()

    def _checkAccepting(self) -> None:
        """Stop accepting at max_connections (the kernel's backlog queues the rest); resume below."""
        full = len(self.connections) + len(self.awaitingHeader) >= self.config.max_connections
        if full and not self.acceptPaused and self.port is not None:
            self.acceptPaused = True
            self.port.stopReading()
            self.log("warn", "max_connections", listener=self.config.name, limit=self.config.max_connections)
        elif not full and self.acceptPaused:
            self.acceptPaused = False
            self.port.startReading()
