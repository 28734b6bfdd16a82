# -*- test-case-name: tests.twisted -*-
"""
The seam's Twisted TLS surface: drop-in replacements for L{twisted.protocols.tls.TLSMemoryBIOProtocol},
L{twisted.protocols.tls.BufferingTLSTransport} and
L{twisted.protocols.tls.TLSMemoryBIOFactory} whose record path runs in the
compiled L{tlsfast.TLSEngine}.

Theory of operation
===================

The classes subclass Twisted's own, so everything that is not the record path
(producers, C{loseConnection}/C{abortConnection}, C{failVerification},
C{_tlsShutdownFinished} and its reason squashing, the legacy context-factory
shims, small-write aggregation) I{is} Twisted's code.  Only the methods that
touch the C{OpenSSL.SSL.Connection} byte by byte are replaced:

    - C{dataReceived}: one C{engine.receive()} per incoming chunk -- it feeds
      the ciphertext, drives the handshake and returns all plaintext -- and
      one C{dataReceived} call on the application for it;
    - C{_write}: one C{engine.send()} per outgoing write, one
      C{transport.write()} of the ciphertext;
    - C{_flushSendBIO}: one C{engine.outgoing()};
    - C{_checkHandshakeStatus}, C{_flushReceiveBIO}, C{connectionLost}
      (C{engine.receive_eof()} replaces C{bio_shutdown} + the C{recv} loop).

Connection states are the stock ones (C{_handshakeDone}, C{_lostTLSConnection},
C{_aborted}, C{disconnecting}), plus one derived from them for speed:
C{_established} holds the engine while the handshake is done and none of
the other three is set (their descriptors end it when one is set, wherever
Twisted sets it), so a record on an established connection costs one
check.  The engine adds no state of its own that the glue has to track,
except the I{deferred error}: when the engine decrypted
plaintext before hitting an error or a close_notify it returns the plaintext
and keeps the error.  Stock Twisted delivers the plaintext and then handles
the error in the same C{dataReceived}; so do we, by asking the engine for the
kept error right after the delivery.

Writes made before the handshake completes are kept in C{_appSendBuffer} (and
a registered producer is paused) exactly as stock Twisted does, rather than in
the engine, because C{loseConnection} and the producer logic look at that
buffer.

If the C{Connection} cannot be driven by the engine (tlsfast is not
accelerated here, Twisted's private names checked below are not as expected,
or a test or application substituted an object that is not a memory-BIO
C{OpenSSL.SSL.Connection}), the protocol runs Twisted's own code for that
connection: every overridden method falls back to the stock one when
C{self._engine} is L{None}.

Private surface
===============

Everything in this module subclasses or reads Twisted's private TLS
internals: the C{TLSMemoryBIOProtocol} members in L{PROTOCOL_INTERNALS},
C{_AggregateSmallWrites}, C{TLSMemoryBIOFactory._creatorCallable},
C{twisted.internet._newtls._BypassTLS} and the module-level class names that
L{replaceClasses} rebinds.  L{SURFACE} is their import-time check; when it
fails no engine is bound (L{engineFor}), the classes behave as Twisted's, and
C{tlsfast.twisted.install()} leaves Twisted alone.

Connection events
=================

Other layers (the options' timeouts) learn of a connection's events through
L{observeConnection}: our protocol calls each registered
L{TLSConnectionObserver} when the handshake completes, when the application
asks to close, and when the connection is lost.  Stock Twisted's protocol
has no such hook; for it L{observeConnection} wraps the two methods on that
one instance instead (the only place that does).  L{engineOf} is the public
way to reach a connection's engine.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any
from typing import Protocol as TypingProtocol

from OpenSSL.SSL import Error, ZeroReturnError
from twisted.internet import _newtls
from twisted.internet._newtls import _BypassTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.protocols import tls as _stock
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from zope.interface import directlyProvides, providedBy

from tlsfast import ACCELERATED, TLSEngine
from tlsfast._foreign import (
    TWISTED_TESTED,
    Surface,
    missingAssignments,
    missingAttributes,
    missingParameters,
    ticketcontrol,
    twistedtcp,
)
from tlsfast._foreign.pyopenssl import textToBytes

if ACCELERATED:
    from tlsfast._engine import RecordLoop

# Captured at import, before install() can rebind the names in
# twisted.protocols.tls.
StockTLSMemoryBIOProtocol = _stock.TLSMemoryBIOProtocol
StockBufferingTLSTransport = _stock.BufferingTLSTransport
StockTLSMemoryBIOFactory = _stock.TLSMemoryBIOFactory

# TLSMemoryBIOProtocol's private methods we override or call, with their
# parameters, and the private state we read (class attributes in Twisted).
PROTOCOL_INTERNALS = {
    "_checkHandshakeStatus": ("self",),
    "_flushSendBIO": ("self",),
    "_flushReceiveBIO": ("self",),
    "_shutdownTLS": ("self",),
    "_tlsShutdownFinished": ("self", "reason"),
    "_bufferedWrite": ("self", "octets"),
    "_unbufferPendingWrites": ("self",),
    "_write": ("self", "bytes"),
}
PROTOCOL_STATE = ("_reason", "_handshakeDone", "_lostTLSConnection", "_producer", "_aborted")


def check() -> Surface:
    """Check the names this module uses (at import: L{SURFACE})."""
    return Surface("Twisted TLS protocol internals", "Twisted", TWISTED_TESTED).require(
        missingAttributes(StockTLSMemoryBIOProtocol, [*PROTOCOL_INTERNALS, *PROTOCOL_STATE]),
        *(missingParameters(StockTLSMemoryBIOProtocol, name, parameters)
          for name, parameters in PROTOCOL_INTERNALS.items()),
        missingAssignments(StockTLSMemoryBIOProtocol.__init__, ("_connectWrapped",)),
        missingAssignments(StockTLSMemoryBIOProtocol.makeConnection, ("_tlsConnection", "_appSendBuffer")),
        missingAssignments(StockBufferingTLSTransport.__init__, ("_aggregator",)),
        missingAssignments(StockTLSMemoryBIOFactory.__init__, ("_creatorCallable", "_clock")),
        missingAttributes(_stock, ("_AggregateSmallWrites",)),
        missingAttributes(getattr(_stock, "_AggregateSmallWrites", None), ("MAX_BUFFER_SIZE", "flush", "write")),
        missingAssignments(getattr(_stock, "_AggregateSmallWrites", None),
                           ("_write", "_clock", "_buffer", "_bufferLeft", "_scheduled")),
        missingAssignments(_BypassTLS.__init__, ("_connection",)),
    )


SURFACE = check()


def engineFor(connection):
    """
    Return a L{tlsfast.TLSEngine} driving C{connection}, or L{None} when the
    engine is unavailable, Twisted's internals are not as this module expects
    (L{SURFACE}), or C{connection} is not a memory-BIO
    L{OpenSSL.SSL.Connection} (then Twisted's own record path is used).
    """
    if not ACCELERATED or not SURFACE.usable:
        return None
    try:
        return TLSEngine(connection)
    except (TypeError, AttributeError):
        return None


class TLSConnectionObserver(TypingProtocol):
    """
    Told of one TLS connection's events (L{observeConnection}).
    """

    def tlsHandshakeCompleted(self, tlsProtocol: Any) -> None:
        """The handshake has completed."""

    def tlsClosing(self, tlsProtocol: Any) -> None:
        """The application called C{loseConnection} (it has returned)."""

    def tlsConnectionLost(self, tlsProtocol: Any, reason: Failure) -> None:
        """The connection is lost (called before the application hears of it)."""


class _EndsEstablished:
    """
    Twisted's flag C{name} on our protocol: setting it true (wherever Twisted
    or we do) ends the established state (C{_established} becomes L{None}).

    It watches only sets: with no C{__get__}, a read finds the value in the
    instance's C{__dict__} (where stock Twisted keeps it too) as fast as any
    attribute, without a Python call.  L{TLSMemoryBIOProtocol.__init__} puts
    the stock defaults there.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.default = getattr(StockTLSMemoryBIOProtocol, name)

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.name] = value
        if value:
            instance._established = None


class TLSMemoryBIOProtocol(StockTLSMemoryBIOProtocol):
    """
    L{twisted.protocols.tls.TLSMemoryBIOProtocol} with its record path in the
    compiled tlsfast engine.  Same public behaviour, same private state names.

    @ivar _engine: The L{tlsfast.TLSEngine} bound to C{_tlsConnection}, or
        L{None} when this connection uses Twisted's own record path.
    @ivar _observers: the L{TLSConnectionObserver}s of this connection.
    """

    _engine = None
    _connection = None
    # The RecordLoop (BufferingTLSTransport's aggregator and record loop), or None.
    _loop: Any = None
    # The record path's state, explicit: the engine while the connection is
    # established (handshake done; not aborted, lost or closing), when a
    # record goes straight through it; None in every other state, where the
    # general code runs.  The flags that end it set it back to None.
    _established = None
    # (mypy: descriptors standing in for Twisted's plain flags; reads still
    # give the flag's value, from the instance.)
    _aborted = _EndsEstablished("_aborted")  # type: ignore[assignment]  # a descriptor over the base class's plain bool
    _lostTLSConnection = _EndsEstablished("_lostTLSConnection")  # type: ignore[assignment]  # a descriptor over the base class's plain bool
    disconnecting = _EndsEstablished("disconnecting")  # type: ignore[assignment]  # a descriptor over the base class's plain bool

    def __init__(self, factory, wrappedProtocol, _connectWrapped=True):
        StockTLSMemoryBIOProtocol.__init__(self, factory, wrappedProtocol, _connectWrapped)
        state = self.__dict__
        for flag in (TLSMemoryBIOProtocol._aborted, TLSMemoryBIOProtocol._lostTLSConnection,
                     TLSMemoryBIOProtocol.disconnecting):
            state.setdefault(flag.name, flag.default)
        if not self._aggregates and SURFACE.usable and ACCELERATED:
            self._useLoop(RecordLoop(self, TLSMemoryBIOProtocol.write.__get__(self), None, 0, False,
                                     TLSMemoryBIOProtocol.dataReceived))

    # Does this class aggregate small writes (BufferingTLSTransport)?
    _aggregates = False
    # Send OpenSSL's 2 TLS 1.3 tickets even where the context cannot resume
    # them, as stock Twisted does (install(sendUnresumableTickets=True)).
    sendUnresumableTickets = False

    def _useLoop(self, loop):
        """
        Run this connection's established records through C{loop}: it
        becomes the protocol's C{write} and C{dataReceived} (each falls back
        to the methods below in any other state).
        """
        self._loop = loop
        self.write = loop.write
        self.dataReceived = loop.data_received
    _observers: tuple[TLSConnectionObserver, ...] = ()

    def addConnectionObserver(self, observer: TLSConnectionObserver) -> None:
        """
        Tell C{observer} of this connection's handshake completion, close
        request and loss from now on.
        """
        self._observers = (*self._observers, observer)

    def getEngine(self):
        """
        The L{tlsfast.TLSEngine} driving this connection, or L{None} when it
        runs on Twisted's own record path (or is gone).
        """
        return self._engine

    def getRecordLoop(self):
        """
        The L{tlsfast._engine.RecordLoop} running this connection's
        established records (which can relay plaintext to another
        connection in compiled code), or L{None}.
        """
        return self._loop if self._engine is not None else None

    @property
    def _tlsConnection(self):
        """
        The L{OpenSSL.SSL.Connection}.  Replacing it with another object
        detaches the engine: that object is then driven by Twisted's code.
        """
        return self._connection

    @_tlsConnection.setter
    def _tlsConnection(self, connection):
        self._connection = connection
        engine = self._engine
        if engine is not None and engine.connection is not connection:
            self._engine = self._established = None
            self._bindLoop()

    def _bindLoop(self) -> None:
        """Point the record loop (if any) at the current engine, or unbind it."""
        loop = self._loop
        if loop is not None:
            loop.bind(self._engine, Error, TLSMemoryBIOProtocol._loopReceiveFailed,
                      TLSMemoryBIOProtocol._loopSendFailed, TLSMemoryBIOProtocol._deliverGeneral)

    def _releaseLoop(self) -> None:
        """The connection is gone: back to the class's methods, and let the loop go."""
        loop = self._loop
        if loop is None:
            return
        self._loop = None
        state = self.__dict__
        state.pop("dataReceived", None)
        if state.get("write") == loop.write:  # (not BufferingTLSTransport's null aggregator)
            del state["write"]
        loop.release()

    def _loopReceiveFailed(self):
        """The record loop's C{engine.receive()} raised (called in its except block)."""
        self._receiveFailed(Failure())

    def _loopSendFailed(self):
        """The record loop's encryption raised (called in its except block)."""
        self._tlsShutdownFinished(Failure())

    # -- connection setup ---------------------------------------------------

    def makeConnection(self, transport):
        """
        Connect this wrapper to the given transport, create the
        L{OpenSSL.SSL.Connection} and bind the engine to it.
        """
        if not SURFACE.usable:
            return StockTLSMemoryBIOProtocol.makeConnection(self, transport)
        connection = self.factory._creatorCallable(self)
        self._tlsConnection = connection
        self._engine = engineFor(connection)
        if self._engine is not None and not self.sendUnresumableTickets:  # (a pyOpenSSL Connection)
            ticketcontrol.withoutUnresumableTickets(connection)
        self._appSendBuffer = []
        self._bindLoop()
        if self._loop is not None and self._engine is not None:
            twistedtcp.attachSocketEnd(transport, self, self._loop)

        # Provide the interfaces of the wrapped transport, ending in the same
        # state as stock Twisted, with fewer (slow) zope calls: stock calls
        # directlyProvides once per interface, and each call replaces the
        # previous one, so only the last interface stays -- and when the
        # wrapped protocol is connected, ProtocolWrapper.makeConnection below
        # replaces even that with all of them.
        if not self._connectWrapped:
            interfaces = tuple(providedBy(transport))
            if interfaces:
                directlyProvides(self, interfaces[-1])

        # Skip ProtocolWrapper.makeConnection: wrapping is conditional (#3821).
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        if self._connectWrapped:
            ProtocolWrapper.makeConnection(self, transport)
        self._publishNegotiatedProtocol()
        self._checkHandshakeStatus()

    # -- handshake ----------------------------------------------------------

    def _checkHandshakeStatus(self):
        engine = self._engine
        if engine is None:
            wasDone = self._handshakeDone
            StockTLSMemoryBIOProtocol._checkHandshakeStatus(self)
            if self._handshakeDone and not wasDone:
                self._notifyHandshakeCompleted()
            return
        if self._aborted:
            return
        try:
            done = engine.do_handshake()
        except Error:
            self._tlsShutdownFinished(Failure())
            return
        if done:
            self._handshakeCompleted()
        else:
            self._flushSendBIO()

    def _handshakeCompleted(self):
        """
        Record that the handshake is complete and tell the application.
        """
        self._handshakeDone = True
        if not (self._aborted or self._lostTLSConnection or self.disconnecting):
            self._established = self._engine
        self._publishNegotiatedProtocol()
        self._notifyHandshakeCompleted()
        if IHandshakeListener.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.handshakeCompleted()

    def _notifyHandshakeCompleted(self):
        for observer in self._observers:
            observer.tlsHandshakeCompleted(self)

    def _publishNegotiatedProtocol(self):
        """
        After C{startTLS} the application's transport is the TCP connection,
        not this protocol; give it C{negotiatedProtocol} too (stock Twisted
        raises L{AttributeError} there): L{None} until the handshake is done.
        """
        if isinstance(self.transport, _BypassTLS):
            self.transport._connection.negotiatedProtocol = (
                self.negotiatedProtocol if self._handshakeDone else None)

    # -- incoming -----------------------------------------------------------

    def dataReceived(self, data):
        """
        Decrypt C{data} (ciphertext from the transport) with one engine call,
        advance the handshake, and deliver all plaintext now available to the
        application in one C{dataReceived} call.  (The general path, for any
        state: an established connection's records go through the record
        loop, which is this instance's C{dataReceived}.)
        """
        engine = self._engine
        if engine is None:
            return StockTLSMemoryBIOProtocol.dataReceived(self, data)
        if self._aborted or self._lostTLSConnection:
            # Stock Twisted feeds the bytes to OpenSSL but never delivers
            # anything once TLS is aborted or finished; skip the work.
            return
        try:
            plaintext = engine.receive(data)
        except Error:
            self._receiveFailed(Failure())
            return
        if not self._handshakeDone:
            if not engine.handshake_done:
                self._flushSendBIO()
                return
            self._handshakeCompleted()
        self._deliverGeneral(plaintext)

    def _deliverGeneral(self, plaintext):
        """
        Deliver what C{engine.receive()} returned, in any state: send what
        waited for the handshake first, and handle an error the engine kept.
        """
        if self._appSendBuffer:
            self._unbufferPendingWrites()
        self._deliver(plaintext)

    def _deliver(self, plaintext):
        """
        Give C{plaintext} to the application, then handle an error the engine
        kept back while returning it, then send what OpenSSL queued.
        """
        engine = self._engine
        if engine is None:
            # A callback (handshakeCompleted) already lost the connection.
            return
        failure = None
        error = engine.take_deferred_error()
        if error is not None:
            # Handled after the delivery, as stock Twisted handles an error
            # met after some plaintext in the same dataReceived.
            failure = Failure(error)
        flushed = False
        if plaintext and not self._aborted and not self._lostTLSConnection:
            flushed = self._deliverToApplication(plaintext)
        if failure is not None:
            if not self._lostTLSConnection:
                self._receiveErrored(failure)
            return
        if not flushed and self._engine is not None:
            # (None if the application lost the connection synchronously.)
            self._flushSendBIO()

    def _deliverToApplication(self, plaintext):
        """
        Call the application's C{dataReceived}; through the record loop,
        which also sends what the application wrote meanwhile.

        @return: whether everything OpenSSL queued has been sent since (so
            the caller need not ask the engine again).
        """
        return self._loop.deliver(plaintext)  # (wherever there is an engine, there is a loop)

    def _receiveFailed(self, failure):
        """
        C{engine.receive()} raised C{failure}: a handshake failure if the
        handshake did not complete, else a failure of the established
        connection (the handshake may have completed in that very call).
        """
        if not self._handshakeDone:
            engine = self._engine
            if engine is None or not engine.handshake_done:
                self._tlsShutdownFinished(failure)
                return
            self._handshakeCompleted()
            if self._appSendBuffer:
                self._unbufferPendingWrites()
        self._receiveErrored(failure)

    def _receiveErrored(self, failure):
        """
        Reading from an established connection failed: a close_notify shuts
        TLS down (the reason then comes from the transport), anything else is
        reported to the application.
        """
        if isinstance(failure.value, ZeroReturnError):  # (Failure.check, without its qual() walk)
            self._shutdownTLS()
            self._tlsShutdownFinished(None)
        else:
            self._tlsShutdownFinished(failure)

    def _flushReceiveBIO(self):
        engine = self._engine
        if engine is None:
            return StockTLSMemoryBIOProtocol._flushReceiveBIO(self)
        if self._lostTLSConnection:
            self._flushSendBIO()
            return
        try:
            plaintext = engine.receive(b"")
        except Error:
            self._receiveFailed(Failure())
            return
        self._deliver(plaintext)

    def loseConnection(self):
        """
        Send a TLS close alert and close the underlying connection (Twisted's
        code), then tell the observers.
        """
        StockTLSMemoryBIOProtocol.loseConnection(self)
        for observer in self._observers:
            observer.tlsClosing(self)

    def connectionLost(self, reason):
        """
        The transport is gone: let the engine see the end of file, deliver any
        plaintext left, and report the loss (once) to the application.
        """
        for observer in self._observers:
            observer.tlsConnectionLost(self, reason)
        engine = self._engine
        if engine is None:
            self._releaseLoop()
            return StockTLSMemoryBIOProtocol.connectionLost(self, reason)
        if not self._lostTLSConnection:
            try:
                plaintext = engine.receive_eof()
            except Error:
                self._receiveErrored(Failure())
            else:
                self._deliver(plaintext)
            self._lostTLSConnection = True
        reason = self._reason or reason
        self._reason = None
        self.connected = False
        ProtocolWrapper.connectionLost(self, reason)
        # Break the cycles protocol -> engine -> Connection -> app data and
        # protocol -> loop -> protocol (Twisted's test_noCircularReferences).
        self._tlsConnection = None
        self._engine = None
        self._releaseLoop()

    # -- outgoing -----------------------------------------------------------

    def _flushSendBIO(self):
        engine = self._engine
        if engine is None:
            return StockTLSMemoryBIOProtocol._flushSendBIO(self)
        self._loop.send_outgoing()  # (wherever there is an engine, there is a loop)

    def _write(self, data):
        engine = self._engine
        if engine is None:
            return StockTLSMemoryBIOProtocol._write(self, data)
        if self._lostTLSConnection:
            return
        if not self._handshakeDone:
            # Stock: SSL_write wants a read; the bytes wait in _appSendBuffer.
            if isinstance(data, str):
                data = textToBytes("buf", data)
            self._bufferedWrite(data)
            return
        try:
            ciphertext = engine.send(data)
        except Error:
            self._tlsShutdownFinished(Failure())
            return
        except TypeError:
            if not isinstance(data, str):
                raise
            # pyOpenSSL's send() encodes text with a DeprecationWarning.
            return self._write(textToBytes("buf", data))
        if ciphertext:
            self.transport.write(ciphertext)

    def write(self, data):
        """
        Encrypt and send C{data}: Twisted's C{write}, with the established
        connection's case in one engine call and no further Python call.
        """
        engine = self._established
        if engine is None:
            # Before the handshake, after loseConnection (dropped unless a
            # producer is registered) or on Twisted's record path: stock.
            return StockTLSMemoryBIOProtocol.write(self, data)
        if not self._loop.send_now(data):
            # Not bytes: _write takes buffers, and encodes text as pyOpenSSL does.
            self._write(data)

    def _unbufferPendingWrites(self):
        engine = self._engine
        if engine is None:
            return StockTLSMemoryBIOProtocol._unbufferPendingWrites(self)
        pendingWrites, self._appSendBuffer = self._appSendBuffer, []
        # One engine call for everything written during the handshake.
        self._write(b"".join(pendingWrites))
        if self._appSendBuffer:
            return
        if self._producer is not None:
            self._producer.resumeProducing()
            return
        if self.disconnecting:
            self._shutdownTLS()


class BufferingTLSTransport(StockBufferingTLSTransport, TLSMemoryBIOProtocol):
    """
    L{twisted.protocols.tls.BufferingTLSTransport} (small writes aggregated
    and written at the next reactor iteration) over the tlsfast record path.

    Its aggregator is a L{tlsfast._engine.RecordLoop}: Twisted's
    aggregator contract, plus the established connection's loop in compiled
    code.  Replies the application writes from inside C{dataReceived} are
    encrypted and sent as soon as it returns, in one engine call, instead of
    one reactor iteration later (stock): the read event that brought the
    request also sends the response.  Over a TCP socket the loop also does
    the reading (L{twistedtcp.attachSocketEnd}).

    Method resolution order: Twisted's buffering layer first, then our record
    path, then Twisted's L{TLSMemoryBIOProtocol}; so the aggregator's
    flush lands in the stock C{write}, which calls our C{_write}.
    """

    _aggregates = True

    def __init__(self, factory, wrappedProtocol, _connectWrapped=True):
        StockBufferingTLSTransport.__init__(self, factory, wrappedProtocol, _connectWrapped)
        if not SURFACE.usable or not ACCELERATED:
            return
        stock = self._aggregator
        self._aggregator = RecordLoop(self, stock._write, stock._clock, stock.MAX_BUFFER_SIZE, True,
                                      TLSMemoryBIOProtocol.dataReceived)
        self._useLoop(self._aggregator)

    def writeNow(self, data):
        """
        Encrypt and send C{data} now, after anything aggregated before it,
        instead of one reactor iteration later.  A tlsfast extension for
        relays, whose writes are already whole chunks read from another
        connection: aggregating them only adds a reactor turn and a
        C{callLater} per chunk.
        """
        self._aggregator.flush()
        TLSMemoryBIOProtocol.write(self, data)  # the unaggregated write: close and producer checks


class TLSMemoryBIOFactory(StockTLSMemoryBIOFactory):
    """
    L{twisted.protocols.tls.TLSMemoryBIOFactory} making tlsfast protocols.

    C{__init__} is deliberately inherited, not overridden: Twisted's
    L{LegacyContextFactoryWarning} uses a fixed C{stacklevel} that assumes
    exactly one Python frame in C{TLSMemoryBIOFactory.__init__}, so that the
    warning points at the caller.
    """

    protocol = BufferingTLSTransport


def engineOf(transport: object) -> Any:
    """
    The L{tlsfast.TLSEngine} behind a Twisted TLS transport: the TLS
    protocol itself (C{listenSSL}, endpoints) or, after C{startTLS}, the TCP
    transport's C{protocol}.  L{None} for stock Twisted, a bare Connection or
    a connection on Twisted's record path.
    """
    for candidate in (transport, getattr(transport, "protocol", None)):
        if isinstance(candidate, TLSMemoryBIOProtocol):
            return candidate.getEngine()
    return None


def observeConnection(tlsProtocol: Any, observer: TLSConnectionObserver) -> None:
    """
    Tell C{observer} of C{tlsProtocol}'s events: through
    L{TLSMemoryBIOProtocol.addConnectionObserver} for ours; for stock
    Twisted's protocol, which has no hook, by wrapping C{loseConnection},
    C{connectionLost} and C{_checkHandshakeStatus} on that one instance.
    """
    if isinstance(tlsProtocol, TLSMemoryBIOProtocol):
        tlsProtocol.addConnectionObserver(observer)
        return
    originalLose = tlsProtocol.loseConnection
    originalLost = tlsProtocol.connectionLost
    originalCheck = getattr(tlsProtocol, "_checkHandshakeStatus", None)

    def loseConnection():
        result = originalLose()
        observer.tlsClosing(tlsProtocol)
        return result

    def connectionLost(reason):
        observer.tlsConnectionLost(tlsProtocol, reason)
        return originalLost(reason)

    tlsProtocol.loseConnection = loseConnection
    tlsProtocol.connectionLost = connectionLost
    if originalCheck is not None:
        def checkHandshakeStatus():
            wasDone = getattr(tlsProtocol, "_handshakeDone", False)
            result = originalCheck()
            if getattr(tlsProtocol, "_handshakeDone", False) and not wasDone:
                observer.tlsHandshakeCompleted(tlsProtocol)
            return result

        tlsProtocol._checkHandshakeStatus = checkHandshakeStatus


# Modules that bind the factory (or protocol) name at import time, besides
# twisted.protocols.tls itself.  Imported by replaceClasses() when
# importable so the patch does not depend on import order; any other
# already-imported Twisted module holding one of the names is patched too.
_BINDERS = (
    "twisted.protocols.tls",
    _newtls.__name__,
    "twisted.protocols._sni",
    "twisted.internet.endpoints",
)


def _twistedModules() -> Iterator[Any]:
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "twisted" or name.startswith("twisted.")):
            yield module


def replaceClasses(mapping: Mapping[type, type]) -> None:
    """
    Rebind every module-level name in a loaded Twisted module that refers to
    a key of C{mapping} to its value (what C{install()} and C{uninstall()} do).
    """
    for name in _BINDERS:
        try:
            __import__(name)
        except ImportError:
            pass
    # By identity: module attributes may have any __eq__/__hash__.
    byIdentity = {id(old): (old, new) for old, new in mapping.items()}
    for module in _twistedModules():
        namespace = getattr(module, "__dict__", None)
        if not namespace:
            continue
        for attribute, value in list(namespace.items()):
            entry = byIdentity.get(id(value))
            if entry is not None and entry[0] is value:
                setattr(module, attribute, entry[1])
