"""
Per-connection bookkeeping shared by L{ServerOptions} and L{ClientOptions}:
what the handshake negotiated (L{ConnectionInfo}), the handshake and
close_notify timeouts, and -- opt-in -- ciphertext byte and record counters.

Everything here hangs off OpenSSL callbacks that pyOpenSSL exposes (the info
callback) or that cryptography's binding exposes (the message callback);
nothing needs the record path, so it works identically on stock Twisted, on
the tlsfast glue and on a bare L{tlsfast.TLSEngine}.  The timeouts learn of a
Twisted connection's events (handshake done, C{loseConnection}, lost) as a
L{TLSConnectionObserver} of its TLS protocol.  pyOpenSSL, cryptography and
Twisted internals are reached through the seam, L{tlsfast._foreign}.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

from OpenSSL import SSL

from tlsfast._foreign import pyopenssl
from tlsfast._foreign.cryptobinding import ffi as _ffi
from tlsfast._foreign.cryptobinding import lib as _lib
from tlsfast._foreign.twistedtls import TLSConnectionObserver, engineOf, observeConnection
from tlsfast.options._errors import ConfigurationError, HandshakeTimeout
from tlsfast.options._policy import HAS

# The info-callback events the monitor acts on (besides onActivity).
_START_OR_DONE = SSL.SSL_CB_HANDSHAKE_START | SSL.SSL_CB_HANDSHAKE_DONE

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
    _timers: dict = field(default_factory=dict, repr=False)  # "handshake" / "close" -> IDelayedCall


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
        _countFromEngine(info, engineOf(connectionOrTransport))
    return info


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
        if self._clock is not None:  # (not through the property: twice per handshake)
            return self._clock.seconds()
        if self.handshakeTimeout or self.closeTimeout:
            return self.clock.seconds()
        return time.monotonic()

    def install(self, context: SSL.Context) -> None:
        # Only the handshake's start and end matter here (unless onActivity
        # wants every event): filtered before they reach Python where the
        # seam can, through pyOpenSSL's unfiltered set_info_callback if not.
        if self.onActivity is not None or not pyopenssl.installFilteredInfoCallback(
                context, _START_OR_DONE, self._infoCallback):
            context.set_info_callback(self._infoCallback)
        if self._messageCallback is not None:
            # Not wrapped by pyOpenSSL: set through the binding directly.
            _lib.SSL_CTX_set_msg_callback(pyopenssl.contextPointer(context), self._messageCallback)

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
            info.resumed = bool(_lib.SSL_session_reused(pyopenssl.sslPointer(connection)))
        # Here, inside SSL_do_handshake, before the application hears of the
        # handshake: the same moment on every record path.
        _cancelTimers(info, "handshake")
        if self.onHandshakeDone is not None:
            self.onHandshakeDone(connection, info)

    # -- timeouts ---------------------------------------------------------------

    def _watch(self, tlsProtocol, info):
        """
        Arm the timeouts on a Twisted TLS protocol: the handshake timer starts
        now (the connection is being made); the protocol's events, observed
        by a L{_TimeoutObserver}, do the rest (see docs/howto.md, "Timeouts").
        """
        observer = _TimeoutObserver(self, info, tlsProtocol)
        if self.handshakeTimeout:
            info._timers["handshake"] = self.clock.callLater(self.handshakeTimeout, observer.handshakeExpired)
        observeConnection(tlsProtocol, observer)


class _TimeoutObserver(TLSConnectionObserver):
    """
    A connection's handshake and close_notify timeouts, driven by its TLS
    protocol's events.

    The handshake timer is cancelled by the handshake completing (seen by
    the monitor's info callback, L{Monitor._handshakeDone}).  The
    close_notify timer starts when the application calls C{loseConnection}:
    if the peer's close_notify has not come when it fires, the TCP
    connection is closed anyway (ours was sent).  Losing the connection
    cancels both.  The protocol is held weakly: the timers must not keep it.
    """

    def __init__(self, monitor: Monitor, info: ConnectionInfo, tlsProtocol) -> None:
        self.monitor = monitor
        self.info = info
        self.protocolRef = weakref.ref(tlsProtocol)

    def tlsHandshakeCompleted(self, tlsProtocol) -> None:
        pass  # the info callback has cancelled the handshake timer already

    def tlsClosing(self, tlsProtocol) -> None:
        closeTimeout = self.monitor.closeTimeout
        if closeTimeout and tlsProtocol.connected and "close" not in self.info._timers:
            self.info._timers["close"] = self.monitor.clock.callLater(closeTimeout, self.closeExpired)

    def tlsConnectionLost(self, tlsProtocol, reason) -> None:
        _cancelTimers(self.info, "handshake", "close")

    def handshakeExpired(self) -> None:
        protocol = self.protocolRef()
        info = self.info
        if protocol is None or info.handshakeDone:
            return
        info.handshakeTimedOut = True
        from twisted.python.failure import Failure

        # failVerification: the public way to abort during setup
        # with a reason the application sees in connectionLost.
        protocol.failVerification(Failure(HandshakeTimeout(
            f"TLS handshake not complete after {self.monitor.handshakeTimeout} s")))

    def closeExpired(self) -> None:
        protocol = self.protocolRef()
        if protocol is None or not protocol.connected:
            return
        self.info.closeTimedOut = True
        transport = protocol.transport
        if transport is not None:
            transport.loseConnection()


def _cancelTimers(info: ConnectionInfo, *kinds: str) -> None:
    for kind in kinds:
        timer = info._timers.get(kind)
        if timer is not None and timer.active():
            timer.cancel()


def _countRecord(writeP, version, contentType, buf, length, ssl, arg):
    # Called by OpenSSL for every record header in and out (and for each
    # handshake message, which is ignored here).  Must never raise.
    if contentType != _SSL3_RT_HEADER or length < 5:
        return
    try:
        connection = pyopenssl.connectionForSSL(ssl)
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
