# -*- test-case-name: tests.twisted -*-
"""
Drop-in replacements for L{twisted.protocols.tls.TLSMemoryBIOProtocol},
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
C{_aborted}, C{disconnecting}); the engine adds none of its own that the glue
has to track, except the I{deferred error}: when the engine decrypted
plaintext before hitting an error or a close_notify it returns the plaintext
and keeps the error.  Stock Twisted delivers the plaintext and then handles
the error in the same C{dataReceived}; so do we, by asking the engine for the
kept error right after the delivery.

Writes made before the handshake completes are kept in C{_appSendBuffer} (and
a registered producer is paused) exactly as stock Twisted does, rather than in
the engine, because C{loseConnection} and the producer logic look at that
buffer.

If the C{Connection} cannot be driven by the engine (tlsfast is not
accelerated here, or a test or application substituted an object that is not
a memory-BIO C{OpenSSL.SSL.Connection}), the protocol runs Twisted's own code
for that connection: every overridden method falls back to the stock one when
C{self._engine} is L{None}.
"""

from __future__ import annotations

from OpenSSL._util import text_to_bytes_and_warn
from OpenSSL.SSL import Error, ZeroReturnError
from twisted.internet._newtls import _BypassTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.protocols import tls as _stock
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from zope.interface import directlyProvides, providedBy

from tlsfast import ACCELERATED, TLSEngine

# Captured at import, before install() can rebind the names in
# twisted.protocols.tls.
StockTLSMemoryBIOProtocol = _stock.TLSMemoryBIOProtocol
StockBufferingTLSTransport = _stock.BufferingTLSTransport
StockTLSMemoryBIOFactory = _stock.TLSMemoryBIOFactory


def engineFor(connection):
    """
    Return a L{tlsfast.TLSEngine} driving C{connection}, or L{None} when the
    engine is unavailable or C{connection} is not a memory-BIO
    L{OpenSSL.SSL.Connection} (then Twisted's own record path is used).
    """
    if not ACCELERATED:
        return None
    try:
        return TLSEngine(connection)
    except (TypeError, AttributeError):
        return None


class TLSMemoryBIOProtocol(StockTLSMemoryBIOProtocol):
    """
    L{twisted.protocols.tls.TLSMemoryBIOProtocol} with its record path in the
    compiled tlsfast engine.  Same public behaviour, same private state names.

    @ivar _engine: The L{tlsfast.TLSEngine} bound to C{_tlsConnection}, or
        L{None} when this connection uses Twisted's own record path.
    """

    _engine = None
    _connection = None

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
            self._engine = None

    # -- connection setup ---------------------------------------------------

    def makeConnection(self, transport):
        """
        Connect this wrapper to the given transport, create the
        L{OpenSSL.SSL.Connection} and bind the engine to it.
        """
        connection = self.factory._creatorCallable(self)
        self._tlsConnection = connection
        self._engine = engineFor(connection)
        self._appSendBuffer = []

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
            return StockTLSMemoryBIOProtocol._checkHandshakeStatus(self)
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
        self._publishNegotiatedProtocol()
        if IHandshakeListener.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.handshakeCompleted()

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
        application in one C{dataReceived} call.
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
        if self._appSendBuffer:
            self._unbufferPendingWrites()
        if (plaintext and engine.deferred_error is None
                and not self._aborted and not self._lostTLSConnection):
            # The common case, without the bookkeeping of _deliver().
            if not self._deliverToApplication(plaintext) and self._engine is not None:
                self._flushSendBIO()
            return
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
        Call the application's C{dataReceived}.  (L{BufferingTLSTransport}
        flushes the application's replies as soon as it returns.)

        @return: whether everything OpenSSL queued has been sent since (so
            the caller need not ask the engine again).
        """
        ProtocolWrapper.dataReceived(self, plaintext)
        return False

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
        if failure.check(ZeroReturnError):
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

    def connectionLost(self, reason):
        """
        The transport is gone: let the engine see the end of file, deliver any
        plaintext left, and report the loss (once) to the application.
        """
        engine = self._engine
        if engine is None:
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
        # Break the cycle protocol -> engine -> Connection -> app data.
        self._tlsConnection = None
        self._engine = None

    # -- outgoing -----------------------------------------------------------

    def _flushSendBIO(self):
        engine = self._engine
        if engine is None:
            return StockTLSMemoryBIOProtocol._flushSendBIO(self)
        ciphertext = engine.outgoing()
        if ciphertext:
            self.transport.write(ciphertext)

    def _write(self, data):
        engine = self._engine
        if engine is None:
            return StockTLSMemoryBIOProtocol._write(self, data)
        if self._lostTLSConnection:
            return
        if not self._handshakeDone:
            # Stock: SSL_write wants a read; the bytes wait in _appSendBuffer.
            if isinstance(data, str):
                data = text_to_bytes_and_warn("buf", data)
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
            return self._write(text_to_bytes_and_warn("buf", data))
        if ciphertext:
            self.transport.write(ciphertext)

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

    Method resolution order: Twisted's buffering layer first, then our record
    path, then Twisted's L{TLSMemoryBIOProtocol}; so the aggregator's
    C{super().write} lands in the stock C{write}, which calls our C{_write}.
    """

    def __init__(self, factory, wrappedProtocol, _connectWrapped=True):
        StockBufferingTLSTransport.__init__(self, factory, wrappedProtocol, _connectWrapped)
        stock = self._aggregator
        self._aggregator = _DeliveryAwareAggregator(stock._write, stock._clock)
        self.write = self._aggregator.write

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

    def _deliverToApplication(self, plaintext):
        """
        Replies the application writes from inside C{dataReceived} are
        encrypted and sent as soon as it returns, in one engine call, instead
        of one reactor iteration later (stock): the read event that brought
        the request also sends the response.
        """
        aggregator = self._aggregator
        aggregator.delivering = True
        try:
            self.wrappedProtocol.dataReceived(plaintext)
        finally:
            aggregator.delivering = False
        # The hot path of a request/response server: the flush is inlined
        # (stock: flush -> write -> _write, one reactor iteration later).
        buffered = aggregator._buffer
        if not buffered:
            return False
        data = buffered[0] if len(buffered) == 1 else b"".join(buffered)
        aggregator.discard()
        if self.disconnecting and self._producer is None:
            return False  # as stock write(): dropped after loseConnection
        self._write(data)
        return True


class _DeliveryAwareAggregator(_stock._AggregateSmallWrites):
    """
    Twisted's small-write aggregator, which does not schedule a flush for
    writes made while C{delivering} (the transport flushes right after).
    """

    delivering = False

    def write(self, data):
        if self.delivering:
            self._buffer.append(data + b"")  # (copies a bytearray, as stock)
            self._bufferLeft -= len(data)
            if self._bufferLeft < 0:
                self.flush()
            return
        _stock._AggregateSmallWrites.write(self, data)

    def discard(self):
        """
        Forget the buffered writes (the transport has taken them) and any
        flush scheduled for them.
        """
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        self._buffer = []
        self._bufferLeft = self.MAX_BUFFER_SIZE


class TLSMemoryBIOFactory(StockTLSMemoryBIOFactory):
    """
    L{twisted.protocols.tls.TLSMemoryBIOFactory} making tlsfast protocols.

    C{__init__} is deliberately inherited, not overridden: Twisted's
    L{LegacyContextFactoryWarning} uses a fixed C{stacklevel} that assumes
    exactly one Python frame in C{TLSMemoryBIOFactory.__init__}, so that the
    warning points at the caller.
    """

    protocol = BufferingTLSTransport
