"""
L{ClientOptions}: a client's TLS configuration -- RFC 6125 hostname
verification through Twisted's C{ClientTLSOptions} (service_identity),
trust roots, client certificate, ALPN, SNI -- and a session cache so that
reconnecting resumes.
"""

from __future__ import annotations

import logging
import os
import ssl as _stdssl
import weakref
from collections import OrderedDict

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

from tlsfast._foreign import pyopenssl, twistedsslverify
from tlsfast._foreign.twistedsslverify import ClientTLSOptions, IOpenSSLTrustRoot
from tlsfast.options._errors import ConfigurationError
from tlsfast.options._monitor import Monitor
from tlsfast.options._policy import (
    DEFAULT_CLIENT_CIPHERS,
    DEFAULT_MINIMUM_VERSION,
    Policy,
    checkProtocols,
)
from tlsfast.options._server import _SansIOProtocol, _verifyLocations
from tlsfast.options._sources import loadIdentity

log = logging.getLogger("tlsfast.options")


def platformTrustAvailable() -> bool:
    """
    Whether the platform has a CA bundle where pyOpenSSL's
    C{set_default_verify_paths} looks (the environment variables, the
    system's OpenSSL defaults, and pyOpenSSL's list of distribution paths).
    """
    candidates = [os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")]
    paths = _stdssl.get_default_verify_paths()
    candidates += [paths.cafile, paths.capath, paths.openssl_cafile, paths.openssl_capath]
    candidates += pyopenssl.certificateLocations()
    for candidate in candidates:
        if not candidate:
            continue
        if os.path.isfile(candidate) and os.path.getsize(candidate) > 0:
            return True
        if os.path.isdir(candidate) and any(n.endswith(".0") for n in os.listdir(candidate)):
            return True
    return False


class SessionCache:
    """
    TLS sessions by (options, host, port), least recently used first out.
    Sessions never cross L{ClientOptions} objects, so never cross trust or
    client-identity settings (pyOpenSSL also only lets a session be reused
    with the Context that made it).
    """

    def __init__(self, size: int = 256):
        self.size = size
        self._sessions: OrderedDict = OrderedDict()

    def get(self, key):
        session = self._sessions.get(key)
        if session is not None:
            self._sessions.move_to_end(key)
        return session

    def put(self, key, session) -> None:
        self._sessions[key] = session
        self._sessions.move_to_end(key)
        while len(self._sessions) > self.size:
            self._sessions.popitem(last=False)

    def __len__(self):
        return len(self._sessions)


@implementer(IOpenSSLClientConnectionCreator)
class ClientOptions:
    """
    TLS client options with secure defaults: the server's certificate must
    chain to a trusted CA and match C{hostname} (RFC 6125, via
    service_identity); TLS 1.2 minimum, offering for TLS 1.2 only
    forward-secret key exchange with AEAD ciphers (Mozilla's "intermediate"
    list, L{tlsfast.options.DEFAULT_CLIENT_CIPHERS}:
    ECDHE, then DHE, with AES-GCM or ChaCha20-Poly1305; C{ciphers=}
    replaces it); SNI sent for DNS names.

    @param hostname: the DNS name or IP address the server must prove.
    @param trustRoot: C{"platform"} (default: the system's CAs, or certifi's
        when the platform has none), or a Twisted C{IOpenSSLTrustRoot}.
        Ignored when C{caFile}, C{caPath} or C{caCertificates} is given:
        then only those are trusted.
    @param clientCertificate / clientKey: a client certificate and its key
        (same forms as L{ServerOptions}' C{certificate}).
    @param acceptableProtocols: ALPN names (bytes) in preference order.
    @param sendServerName: L{None} sends SNI for DNS names only (RFC 6066);
        L{True} / L{False} always / never.
    @param port: the port, for the session-cache key, when the transport
        cannot tell (sans-IO use).
    @param sessionCache: L{True} (a cache for these options), L{False}, or a
        L{SessionCache} (which may be shared by several options objects to
        bound their total size; each still only resumes its own sessions).
        A session is stored when the connection ends
        with our close_notify (OpenSSL makes it unresumable otherwise).
    @param minimumVersion, maximumVersion, ciphers, tls13Ciphers, groups,
        keyLogFile, handshakeTimeout, closeTimeout, countRecords, reactor:
        as for L{ServerOptions}.
    """

    def __init__(self, hostname: str, *, trustRoot="platform", caFile=None, caPath=None,
                 caCertificates=None, clientCertificate=None, clientKey=None, password=None,
                 acceptableProtocols=None, sendServerName=None, port=None, sessionCache=True,
                 minimumVersion=DEFAULT_MINIMUM_VERSION, maximumVersion=None,
                 ciphers=None, tls13Ciphers=None, groups=None, keyLogFile=None,
                 handshakeTimeout=None, closeTimeout=None, countRecords=False,
                 reactor=None):
        if isinstance(hostname, bytes):
            hostname = hostname.decode("ascii")
        if not isinstance(hostname, str) or not hostname:
            raise ConfigurationError(f"hostname must be a non-empty string, not {hostname!r}")
        self.hostname = hostname
        self.port = port
        self.acceptableProtocols = checkProtocols(acceptableProtocols)
        self.policy = Policy(minimumVersion, maximumVersion, ciphers, tls13Ciphers, groups, keyLogFile,
                             defaultCiphers=DEFAULT_CLIENT_CIPHERS)
        self.identity = None
        if clientCertificate is not None:
            self.identity = loadIdentity(clientCertificate, clientKey, password=password,
                                         what="client certificate")
        elif clientKey is not None:
            raise ConfigurationError("clientKey given without clientCertificate")
        if sessionCache is True:
            sessionCache = SessionCache()
        elif sessionCache is False:
            sessionCache = None
        self.sessionCache = sessionCache
        self._cacheScope = object()

        context = SSL.Context(SSL.TLS_METHOD)
        context.set_options(SSL.OP_NO_COMPRESSION)
        # Free each connection's 16 KiB+ read/write buffers while it is idle
        # (as CPython's ssl and haproxy do): ~29 KiB less per idle connection,
        # for a malloc/free per busy burst.
        context.set_mode(SSL.MODE_RELEASE_BUFFERS)
        self.policy.apply(context)
        self.trustSource = self._loadTrust(context, trustRoot, caFile, caPath, caCertificates)
        if self.identity is not None:
            self.identity.useIn(context)
        if self.acceptableProtocols:
            context.set_alpn_protos(list(self.acceptableProtocols))
        # Sessions are kept by our own cache, per Connection; OpenSSL's
        # internal client cache is not used.
        context.set_session_cache_mode(SSL.SESS_CACHE_CLIENT | SSL.SESS_CACHE_NO_INTERNAL)
        self._context = context
        self.monitor = Monitor("client", handshakeTimeout, closeTimeout, reactor, countRecords,
                               onHandshakeStart=self._handshakeStarting,
                               onHandshakeDone=self._remember, onActivity=self._remember)
        self.monitor.install(context)
        # Connection -> its session-cache key (host, port).
        self._keys: weakref.WeakKeyDictionary[SSL.Connection, tuple] = weakref.WeakKeyDictionary()
        # Twisted's own hostname handling: IDNA, IP vs DNS, SNI and the
        # service_identity verify callback.
        self._twistedOptions = ClientTLSOptions(self._createConnection, hostname, sendServerName)

    def _loadTrust(self, context, trustRoot, caFile, caPath, caCertificates) -> str:
        if caFile is not None or caPath is not None or caCertificates:
            _verifyLocations(context, caFile, caPath, caCertificates)
            return "given"
        if IOpenSSLTrustRoot.providedBy(trustRoot):
            if not twistedsslverify.SURFACE.usable:
                raise ConfigurationError(
                    "a Twisted trustRoot cannot be used with this Twisted: "
                    + "; ".join(twistedsslverify.SURFACE.problems))
            twistedsslverify.addTrustRoot(trustRoot, context)
            return "trustRoot"
        if trustRoot != "platform":
            raise ConfigurationError(
                f"trustRoot must be 'platform' or a Twisted IOpenSSLTrustRoot, not {trustRoot!r}")
        if platformTrustAvailable():
            context.set_default_verify_paths()
            return "platform"
        try:
            import certifi
        except ImportError:
            raise ConfigurationError(
                "the platform has no CA certificates and certifi is not installed: "
                "give caFile/caPath/caCertificates") from None
        log.info("no platform CA bundle found; trusting certifi's (%s)", certifi.where())
        context.load_verify_locations(certifi.where())
        return "certifi"

    # -- connection creation ----------------------------------------------------

    def _createConnection(self, tlsProtocol) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        connection.set_connect_state()
        return connection

    def getContext(self) -> SSL.Context:
        """The pyOpenSSL Context."""
        return self._context

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        """
        A client-side L{SSL.Connection} for Twisted's TLS protocol
        C{tlsProtocol} (C{IOpenSSLClientConnectionCreator}).
        """
        connection = self._twistedOptions.clientConnectionForTLS(tlsProtocol)
        self.monitor.track(connection, tlsProtocol)
        return connection

    def newConnection(self, port=None) -> SSL.Connection:
        """
        A client-side Connection in connect state, on memory BIOs, for
        L{tlsfast.TLSEngine}, resuming a cached session for
        (hostname, C{port} or the options' port) if there is one.  A
        hostname mismatch fails the handshake; the failure is in
        C{connection.get_app_data().verificationFailure}.
        """
        connection = self._twistedOptions.clientConnectionForTLS(
            _SansIOProtocol())  # type: ignore[arg-type]  # Twisted calls only failVerification on it
        self.monitor.track(connection)
        self._resume(connection, self._key(port if port is not None else self.port))
        return connection

    # -- session cache ------------------------------------------------------------

    def _key(self, port):
        # The scope keeps sessions to this options object (its Context, so
        # its trust and identity) even when a SessionCache is shared.
        return (self._cacheScope, self.hostname, port)

    def _resume(self, connection, key):
        self._keys[connection] = key
        if self.sessionCache is not None:
            session = self.sessionCache.get(key)
            if session is not None:
                connection.set_session(session)

    def _handshakeStarting(self, connection, info):
        # The Twisted path learns the port only now: at connection creation
        # the TLS protocol has no transport yet.  ClientHello is not built
        # yet, so setting the session here still offers it.
        if connection in self._keys:
            return
        port = self.port
        protocol = connection.get_app_data()
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            try:
                port = transport.getPeer().port
            except Exception:  # noqa: BLE001 - no peer port (a UNIX or test transport): resume by host only
                pass
        self._resume(connection, self._key(port))

    def _remember(self, connection, info=None):
        # TLS 1.2: the session is complete when the handshake is; TLS 1.3:
        # tickets arrive after it, so look again on every later event.
        if self.sessionCache is None:
            return
        key = self._keys.get(connection)
        if key is None:
            return
        session = connection.get_session()
        if session is not None:
            self.sessionCache.put(key, session)
