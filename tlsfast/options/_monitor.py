"""
Per-connection bookkeeping shared by L{ServerOptions} and L{ClientOptions}:
what the handshake negotiated (L{ConnectionInfo}), the handshake and
close_notify timeouts, and -- opt-in -- ciphertext byte and record counters.

Everything here hangs off OpenSSL callbacks that pyOpenSSL exposes (the info
callback) or that cryptography's binding exposes (the message callback);
nothing needs the record path, so it works identically on stock Twisted, on
the tlsfast glue and on a bare L{tlsfast.TLSEngine}.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

from cryptography.hazmat.bindings._rust import _openssl
from OpenSSL import SSL

from tlsfast.options._errors import ConfigurationError, HandshakeTimeout
from tlsfast.options._policy import HAS

# The info-callback events the monitor acts on (besides onActivity).
_START_OR_DONE = SSL.SSL_CB_HANDSHAKE_START | SSL.SSL_CB_HANDSHAKE_DONE

# pyOpenSSL's SSL* -> Connection map (private; what its own callbacks use).
# Without it the info callback goes through set_info_callback, unfiltered.
_CONNECTION_OF_SSL = getattr(SSL.Connection, "_reverse_mapping", None)

_ffi, _lib = _openssl.ffi, _openssl.lib

_SSL3_RT_HEADER = 256  # msg callback content type for a record header


@dataclass
class ConnectionInfo:
    """
    What one TLS connection negotiated and carried.

    Filled in when the handshake completes.  Byte counters: when the
    connection runs on the tlsfast engine and C{connectionInfo} is given the
    Twisted transport, plaintext and ciphertext bytes each way come from the
    engine's counters (read at call time, while connected).  Otherwise the
    ciphertext counters (and the record counters, always) need
    C{countRecords=True}, and the plaintext ones stay L{None}: only the record
    path sees plaintext lengths.  Sans-IO users read C{TLSEngine}'s
    C{plaintext_received}, C{plaintext_sent}, C{ciphertext_received} and
    C{ciphertext_sent} directly.
    """

    side: str  # "client" or "server"
    serverName: str | None = None  # the SNI as sent; non-ASCII bytes as surrogateescape surrogates
    version: str | None = None
    cipher: str | None = None
    group: str | None = None
    alpn: bytes | None = None
    resumed: bool | None = None
    handshakeDone: bool = False
    handshakeStarted: float | None = None
    handshakeDuration: float | None = None
    handshakeTimedOut: bool = False
    closeTimedOut: bool = False
    ciphertextBytesReceived: int | None = None
    ciphertextBytesSent: int | None = None
    recordsReceived: int | None = None
    recordsSent: int | None = None
    plaintextBytesReceived: int | None = None
    plaintextBytesSent: int | None = None
    _timers: list = field(default_factory=list, repr=False)


# Connection -> ConnectionInfo; pyOpenSSL Connections are weak-referenceable.
_infos: weakref.WeakKeyDictionary[SSL.Connection, ConnectionInfo] = weakref.WeakKeyDictionary()


def connectionInfo(connectionOrTransport) -> ConnectionInfo | None:
    """
    The L{ConnectionInfo} of a connection made by tlsfast options: pass the
    pyOpenSSL C{Connection}, or a Twisted TLS transport / protocol (anything
    with C{getHandle()} returning it).
    """
    connection = connectionOrTransport
    if not isinstance(connection, SSL.Connection):
        getHandle = getattr(connection, "getHandle", None)
        if getHandle is not None:
            connection = getHandle()
    if not isinstance(connection, SSL.Connection):
        return None
    info = _infos.get(connection)
    if info is not None:
        _countFromEngine(info, _engineOf(connectionOrTransport))
    return info


def _engineOf(transport):
    """
    The tlsfast engine behind a Twisted TLS transport: the TLS protocol itself
    (C{listenSSL}, endpoints) or, after C{startTLS}, the TCP transport's
    C{protocol}.  L{None} for stock Twisted or a bare Connection.
    """
    engine = getattr(transport, "_engine", None)
    if engine is None:
        engine = getattr(getattr(transport, "protocol", None), "_engine", None)
    return engine


def _countFromEngine(info: ConnectionInfo, engine) -> None:
    """Byte counts kept by the engine (in C, at no cost) while it is bound."""
    if engine is None:
        return
    info.plaintextBytesReceived = engine.plaintext_received
    info.plaintextBytesSent = engine.plaintext_sent
    info.ciphertextBytesReceived = engine.ciphertext_received
    info.ciphertextBytesSent = engine.ciphertext_sent


class Monitor:
    """
    Installs the callbacks on a Context and tracks each connection.

    @param clock: an L{IReactorTime} for the timeouts and durations, or
        L{None} (then the global reactor is used, imported only when a
        timeout is configured).
    @param onHandshakeDone: called with (connection, info) after the
        handshake completes.
    @param onActivity: called with the connection on every info-callback
        event after the handshake (the client session cache uses it to
        catch TLS 1.3 tickets, which arrive after the handshake).
    """

    def __init__(self, side, handshakeTimeout=None, closeTimeout=None, clock=None,
                 countRecords=False, onHandshakeStart=None, onHandshakeDone=None,
                 onActivity=None):
        for name, value in (("handshakeTimeout", handshakeTimeout), ("closeTimeout", closeTimeout)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not value > 0):
                raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
        self.side = side
        self.handshakeTimeout = handshakeTimeout
        self.closeTimeout = closeTimeout
        self._clock = clock
        self.countRecords = countRecords
        self.onHandshakeStart = onHandshakeStart
        self.onHandshakeDone = onHandshakeDone
        self.onActivity = onActivity
        self._messageCallback = None
        if countRecords and not HAS["SSL_CTX_set_msg_callback"]:
            raise ConfigurationError(
                "countRecords needs SSL_CTX_set_msg_callback, absent from this cryptography build")
        if countRecords:
            self._messageCallback = _ffi.callback(
                "void(*)(int, int, int, void *, size_t, SSL *, void *)", _countRecord)

    @property
    def clock(self):
        if self._clock is None:
            from twisted.internet import reactor

            self._clock = reactor
        return self._clock

    def _now(self) -> float:
        if self._clock is not None or self.handshakeTimeout or self.closeTimeout:
            return self.clock.seconds()
        return time.monotonic()

    def install(self, context: SSL.Context) -> None:
        reverse = _CONNECTION_OF_SSL
        if self.onActivity is not None or reverse is None:
            context.set_info_callback(self._infoCallback)
        else:
            # OpenSSL calls the info callback ~20 times per handshake and only
            # the start and the end matter here: filter before pyOpenSSL's
            # wrapper would look the Connection up and call us (what
            # set_info_callback installs, minus two Python calls per event).
            infoCallback = self._infoCallback

            def filtered(ssl, where, ret):
                if where & _START_OR_DONE:
                    infoCallback(reverse[ssl], where, ret)

            # Kept where pyOpenSSL keeps its own: alive as long as the Context.
            context._info_callback = _ffi.callback("void (*)(const SSL *, int, int)", filtered)
            _lib.SSL_CTX_set_info_callback(context._context, context._info_callback)
        if self._messageCallback is not None:
            # Not wrapped by pyOpenSSL: set through the binding directly.
            _lib.SSL_CTX_set_msg_callback(context._context, self._messageCallback)

    def track(self, connection: SSL.Connection, tlsProtocol=None) -> ConnectionInfo:
        """Start tracking a new connection (and its timeouts, if any)."""
        info = ConnectionInfo(side=self.side)
        if self.countRecords:
            info.ciphertextBytesReceived = info.ciphertextBytesSent = 0
            info.recordsReceived = info.recordsSent = 0
        _infos[connection] = info
        if tlsProtocol is not None and (self.handshakeTimeout or self.closeTimeout):
            self._watch(tlsProtocol, info)
        return info

    # -- OpenSSL callbacks ----------------------------------------------------

    def _infoCallback(self, connection, where, ret):
        if self.onActivity is None and not where & _START_OR_DONE:
            return  # (when installed through pyOpenSSL, which does not filter)
        info = _infos.get(connection)
        if info is None:
            return
        if where & SSL.SSL_CB_HANDSHAKE_START and info.handshakeStarted is None:
            info.handshakeStarted = self._now()
            if self.onHandshakeStart is not None:
                self.onHandshakeStart(connection, info)
        if where & SSL.SSL_CB_HANDSHAKE_DONE and not info.handshakeDone:
            self._handshakeDone(connection, info)
        elif info.handshakeDone and self.onActivity is not None:
            self.onActivity(connection)

    def _handshakeDone(self, connection, info):
        info.handshakeDone = True
        if info.handshakeStarted is not None:
            info.handshakeDuration = self._now() - info.handshakeStarted
        info.version = connection.get_protocol_version_name()
        info.cipher = connection.get_cipher_name()
        info.group = connection.get_group_name()
        info.alpn = connection.get_alpn_proto_negotiated() or None
        # surrogateescape: bytes that are not ASCII survive (for an exact
        # copy in a PROXY header, for IDNA matching) instead of becoming U+FFFD.
        name = connection.get_servername()
        info.serverName = name.decode("ascii", "surrogateescape") if name is not None else None
        if HAS["SSL_session_reused"]:
            info.resumed = bool(_lib.SSL_session_reused(connection._ssl))
        for timer in info._timers:
            if timer.active() and getattr(timer, "_tlsfastKind", "") == "handshake":
                timer.cancel()
        if self.onHandshakeDone is not None:
            self.onHandshakeDone(connection, info)

    # -- timeouts ---------------------------------------------------------------

    def _watch(self, tlsProtocol, info):
        """
        Arm the timeouts on a Twisted TLS protocol.

        The handshake timer starts now (the connection is being made) and is
        cancelled by the handshake completing.  The close_notify timer starts
        when the application calls C{loseConnection}: if the peer's
        close_notify has not come when it fires, the TCP connection is closed
        anyway (ours was sent).  There is no hook in the TLS protocol for
        either "lost" or "loseConnection", so both are wrapped on this one
        instance (see docs/howto.md, "Timeouts").
        """
        clock = self.clock
        timers = info._timers
        protocolRef = weakref.ref(tlsProtocol)

        def cancelAll():
            for timer in timers:
                if timer.active():
                    timer.cancel()

        if self.handshakeTimeout:
            def handshakeExpired():
                protocol = protocolRef()
                if protocol is None or info.handshakeDone:
                    return
                info.handshakeTimedOut = True
                from twisted.python.failure import Failure

                # failVerification: the public way to abort during setup
                # with a reason the application sees in connectionLost.
                protocol.failVerification(Failure(HandshakeTimeout(
                    f"TLS handshake not complete after {self.handshakeTimeout} s")))

            timer = clock.callLater(self.handshakeTimeout, handshakeExpired)
            timer._tlsfastKind = "handshake"
            timers.append(timer)

        originalLost = tlsProtocol.connectionLost

        def connectionLost(reason):
            cancelAll()
            return originalLost(reason)

        tlsProtocol.connectionLost = connectionLost

        if self.closeTimeout:
            originalLose = tlsProtocol.loseConnection

            def loseConnection():
                result = originalLose()
                protocol = protocolRef()
                if (protocol is not None and protocol.connected
                        and not any(getattr(t, "_tlsfastKind", "") == "close" for t in timers)):
                    def closeExpired():
                        protocol = protocolRef()
                        if protocol is None or not protocol.connected:
                            return
                        info.closeTimedOut = True
                        transport = protocol.transport
                        if transport is not None:
                            transport.loseConnection()

                    timer = clock.callLater(self.closeTimeout, closeExpired)
                    timer._tlsfastKind = "close"
                    timers.append(timer)
                return result

            tlsProtocol.loseConnection = loseConnection


def _countRecord(writeP, version, contentType, buf, length, ssl, arg):
    # Called by OpenSSL for every record header in and out (and for each
    # handshake message, which is ignored here).  Must never raise.
    if contentType != _SSL3_RT_HEADER or length < 5:
        return
    try:
        connection = SSL.Connection._reverse_mapping.get(ssl)
        info = _infos.get(connection) if connection is not None else None
        if info is None or info.recordsSent is None:
            return
        header = _ffi.buffer(buf, 5)
        size = 5 + (header[3][0] << 8 | header[4][0])
        if writeP:
            info.recordsSent += 1
            info.ciphertextBytesSent += size
        else:
            info.recordsReceived += 1
            info.ciphertextBytesReceived += size
    except Exception:  # noqa: BLE001  # pragma: no cover - an exception must never unwind into OpenSSL
        pass
