"""
L{ServerOptions}: a server's TLS configuration, checked when built, usable
by Twisted (C{IOpenSSLServerConnectionCreator}) and by L{tlsfast.TLSEngine}.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

from tlsfast._foreign.ticketcontrol import (
    OPENSSL_DEFAULT_TICKETS,
    TICKET_KEYS_LENGTH,
    ticketControl,
    unavailableReason,
)
from tlsfast.options._alpn import selectProtocol
from tlsfast.options._errors import ConfigurationError
from tlsfast.options._monitor import Monitor
from tlsfast.options._policy import (
    DEFAULT_MINIMUM_VERSION,
    DEFAULT_SERVER_CIPHERS,
    DHE_AEAD_CIPHERS,
    Policy,
    checkProtocols,
    loadDHParameters,
    probeServer,
)
from tlsfast.options._servername import InvalidServerName, ServerNameMap
from tlsfast.options._sources import loadCertificates, loadIdentity

_CLIENT_CERTIFICATE_MODES = {
    "none": SSL.VERIFY_NONE,
    "optional": SSL.VERIFY_PEER,
    "required": SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
}


class _SansIOProtocol:
    """
    Stands in for the Twisted TLS protocol as a Connection's app data when
    the caller drives the Connection itself (L{tlsfast.TLSEngine}): Twisted's
    verification callbacks call C{failVerification} on it.
    """

    def __init__(self):
        self.verificationFailure = None

    def failVerification(self, reason):
        self.verificationFailure = reason


def _verifyLocations(context, caFile=None, caPath=None, caCertificates=None):
    """Load trusted CAs (file, directory, certificates) into C{context}."""
    if caFile is not None or caPath is not None:
        for what, value, test in (("CA file", caFile, os.path.isfile),
                                  ("CA directory", caPath, os.path.isdir)):
            if value is not None and not test(os.fspath(value)):
                raise ConfigurationError(f"{what} {os.fspath(value)!r} does not exist")
        if caFile is not None:
            loadCertificates(caFile, "CA file")  # fail now if it holds no certificate
        try:
            context.load_verify_locations(
                None if caFile is None else os.fspath(caFile),
                None if caPath is None else os.fspath(caPath))
        except SSL.Error as e:
            raise ConfigurationError(f"cannot load CA file/directory: {e}") from e
    certificates = loadCertificates(list(caCertificates), "CA certificate") if caCertificates else []
    store = context.get_cert_store()
    for certificate in certificates:
        store.add_cert(crypto.X509.from_cryptography(certificate))
    return certificates


@implementer(IOpenSSLServerConnectionCreator)
class ServerOptions:
    """
    TLS server options with secure defaults: TLS 1.2 minimum; for TLS 1.2
    only forward-secret ECDHE key exchange with AEAD ciphers
    (L{tlsfast.options.DEFAULT_SERVER_CIPHERS}:
    C{ECDHE-{ECDSA,RSA}-{AES128-GCM,AES256-GCM,CHACHA20-POLY1305}}), plus
    the three DHE-RSA AEAD suites when C{dhParameters} are given; OpenSSL's TLS 1.3
    suites and groups (the hybrid post-quantum X25519MLKEM768 first);
    session tickets and cache on.

    @param certificate: the server certificate (and optionally its chain and
        key): a PEM path or bytes, a C{cryptography} certificate or a list
        of them (leaf first), or a Twisted C{PrivateCertificate}.
    @param privateKey: its key (path, PEM bytes, C{cryptography} key), unless
        it is in C{certificate}.
    @param chain: extra chain certificates sent after the leaf.
    @param password: for an encrypted key.
    @param clientCertificate: C{"none"} (default), C{"optional"} or
        C{"required"}.
    @param caFile / caPath / caCertificates: the CAs client certificates
        must chain to (needed unless C{clientCertificate} is C{"none"}).
    @param acceptableProtocols: ALPN names (bytes) in preference order.
        Without them, clients offering ALPN are accepted without ALPN; with
        them, a client offering none of them fails the handshake with alert
        120 C{no_application_protocol} (L{NoApplicationProtocol}).
    @param serverNames: SNI map, server name (C{"*.example.com"} wildcards
        allowed) to a certificate source, or to a C{(certificate, key)}
        pair; names not in it get C{certificate}.
    @param minimumVersion / maximumVersion: C{"1.2"} / C{"1.3"}.
    @param ciphers: TLS 1.2 OpenSSL cipher string, replacing the default
        list above (C{"DEFAULT"} restores OpenSSL's own, which includes
        static-RSA key exchange and CBC suites).
    @param tls13Ciphers: TLS 1.3 suites, C{"TLS_AES_128_GCM_SHA256:..."}.
    @param groups: key-exchange groups, C{"X25519MLKEM768:X25519"}.
    @param dhParameters: PEM path or bytes of DH parameters (TLS 1.2 DHE).
    @param sessionTickets: L{True}: stateless session tickets, and OpenSSL's
        2 TLS 1.3 tickets per full handshake (1 per resumption); an integer
        C{N}: stateless tickets, C{N} per TLS 1.3 handshake (C{0}: no tickets
        at all, TLS 1.2 included); L{False}: no stateless tickets (TLS 1.3
        then resumes through C{sessionCache}'s stateful tickets).  With
        neither stateless tickets nor the cache the server cannot resume, so
        it sends no ticket (stock OpenSSL sends 2 unusable ones).  Tickets
        are resumable by this process only (each context has its own key),
        unless C{ticketKeys} are given.
    @param ticketKeys: 80 secret bytes (e.g. C{os.urandom(80)}) to encrypt
        session tickets with instead of a key of this process's own: servers
        in other processes given the same bytes resume each other's tickets
        (a proxy's workers behind one port).
    @param sessionCache: keep the server-side session cache.
    @param keyLogFile: path for NSS-format secrets; L{None} honours
        C{SSLKEYLOGFILE}; L{False} never logs.
    @param handshakeTimeout / closeTimeout: seconds, or L{None} for none.
    @param countRecords: count ciphertext bytes and records per connection
        (a Python call per record: off by default).
    @param reactor: an C{IReactorTime} for the timeouts (default: the global
        reactor, imported only when a timeout is set).
    """

    def __init__(self, certificate, privateKey=None, *, chain=(), password=None,
                 clientCertificate="none", caFile=None, caPath=None, caCertificates=None,
                 acceptableProtocols=None, serverNames=None,
                 minimumVersion=DEFAULT_MINIMUM_VERSION, maximumVersion=None,
                 ciphers=None, tls13Ciphers=None, groups=None, dhParameters=None,
                 sessionTickets=True, ticketKeys=None, sessionCache=True, keyLogFile=None,
                 handshakeTimeout=None, closeTimeout=None, countRecords=False,
                 reactor=None):
        self.identity = loadIdentity(certificate, privateKey, chain, password,
                                     what="server certificate")
        if clientCertificate not in _CLIENT_CERTIFICATE_MODES:
            raise ConfigurationError(
                f"clientCertificate must be one of {sorted(_CLIENT_CERTIFICATE_MODES)}, "
                f"not {clientCertificate!r}")
        if clientCertificate != "none" and not (caFile or caPath or caCertificates):
            raise ConfigurationError(
                f"clientCertificate={clientCertificate!r} needs caFile, caPath or caCertificates")
        self.clientCertificate = clientCertificate
        self.acceptableProtocols = checkProtocols(acceptableProtocols)
        # DH parameters are only used by DHE suites: giving them opts in.
        defaultCiphers = DEFAULT_SERVER_CIPHERS
        if dhParameters is not None:
            defaultCiphers += ":" + DHE_AEAD_CIPHERS
        self.policy = Policy(minimumVersion, maximumVersion, ciphers, tls13Ciphers, groups, keyLogFile,
                             defaultCiphers=defaultCiphers)
        self._trust = dict(caFile=caFile, caPath=caPath, caCertificates=caCertificates)
        self._dhParameters = dhParameters
        self._sessionTickets = bool(sessionTickets)
        self._sessionCache = sessionCache
        self.ticketsPerHandshake = _ticketsPerHandshake(sessionTickets, sessionCache)
        self._ticketKeys = _checkTicketKeys(ticketKeys, self._sessionTickets)
        self.monitor = Monitor("server", handshakeTimeout, closeTimeout, reactor, countRecords)

        probeServer(self.policy, self.identity)
        self._context = self._makeContext(self.identity)
        contexts = {}
        for name, source in (serverNames or {}).items():
            if isinstance(source, tuple) and len(source) == 2:
                identity = loadIdentity(source[0], source[1], what=f"certificate for {name!r}")
            else:
                identity = loadIdentity(source, what=f"certificate for {name!r}")
            probeServer(self.policy, identity)
            contexts[name] = self._makeContext(identity)
        try:
            self._serverNames: ServerNameMap[SSL.Context] = ServerNameMap(contexts)
        except InvalidServerName as e:
            raise ConfigurationError(str(e)) from None
        if self._serverNames:
            for context in self._allContexts():
                context.set_tlsext_servername_callback(self._selectServerName)

    def _allContexts(self):
        return [self._context, *self._serverNames.values()]

    def _makeContext(self, identity) -> SSL.Context:
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
        # Free each connection's 16 KiB+ read/write buffers while it is idle
        # (as CPython's ssl and haproxy do): ~29 KiB less per idle connection,
        # for a malloc/free per busy burst.
        context.set_mode(SSL.MODE_RELEASE_BUFFERS)
        self.policy.apply(context)
        identity.useIn(context)
        if self.clientCertificate != "none":
            certificates = _verifyLocations(context, **self._trust)
            context.set_verify(_CLIENT_CERTIFICATE_MODES[self.clientCertificate],
                               lambda connection, x509, errno, depth, ok: bool(ok))
            for certificate in certificates:
                context.add_client_ca(certificate)
        if self._dhParameters is not None:
            loadDHParameters(context, self._dhParameters)
        if not self._sessionTickets:
            context.set_options(SSL.OP_NO_TICKET)
        _setTicketCount(context, self.ticketsPerHandshake)
        if self._ticketKeys is not None:
            control = ticketControl()
            assert control is not None  # _checkTicketKeys refused keys without it
            control.setTicketKeys(context, self._ticketKeys)
        context.set_session_cache_mode(
            SSL.SESS_CACHE_SERVER if self._sessionCache else SSL.SESS_CACHE_OFF)
        # A session-id context is required to resume when clients are
        # verified; derive it from what a session vouches for, so a session
        # made under one identity/trust is not resumed under another.
        digest = hashlib.sha256(self.identity.fingerprint())
        digest.update(self.clientCertificate.encode())
        for c in _verifyLocationsFingerprint(self._trust):
            digest.update(c)
        context.set_session_id(digest.digest()[:32])
        context.set_alpn_select_callback(self._selectProtocol)
        self.monitor.install(context)
        return context

    # -- callbacks --------------------------------------------------------------

    def _selectProtocol(self, connection, offered):
        return selectProtocol(self.acceptableProtocols or (), offered)

    def _selectServerName(self, connection):
        context = self._serverNames.lookup(connection.get_servername())
        if context is not None:
            connection.set_context(context)

    # -- connection creation ------------------------------------------------------

    def getContext(self) -> SSL.Context:
        """The default pyOpenSSL Context (as Twisted's context factories)."""
        return self._context

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        """
        A server-side L{SSL.Connection} for Twisted's TLS protocol
        C{tlsProtocol} (C{IOpenSSLServerConnectionCreator}).
        """
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        self.monitor.track(connection, tlsProtocol)
        return connection

    def newConnection(self) -> SSL.Connection:
        """
        A server-side Connection in accept state, on memory BIOs, for
        L{tlsfast.TLSEngine} (sans-IO use; no timeouts).
        """
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(_SansIOProtocol())
        connection.set_accept_state()
        self.monitor.track(connection)
        return connection


def _ticketsPerHandshake(sessionTickets, sessionCache) -> int:
    """
    TLS 1.3 tickets per full handshake for C{ServerOptions}'
    C{sessionTickets} and C{sessionCache}: none that could not be resumed.

    @raise ConfigurationError: not a count, or an explicit count that this
        cryptography build does not let us set (L{tlsfast._foreign.ticketcontrol}).
    """
    if isinstance(sessionTickets, bool):
        resumable = sessionTickets or bool(sessionCache)
        return OPENSSL_DEFAULT_TICKETS if resumable else 0
    if not isinstance(sessionTickets, int) or sessionTickets < 0:
        raise ConfigurationError(
            f"sessionTickets must be True, False or a number of tickets (0 or more), "
            f"not {sessionTickets!r}")
    if sessionTickets != OPENSSL_DEFAULT_TICKETS and ticketControl() is None:
        raise ConfigurationError(
            f"sessionTickets={sessionTickets}: the number of TLS 1.3 tickets cannot be set "
            f"here ({unavailableReason()})")
    return sessionTickets


def _checkTicketKeys(ticketKeys, sessionTickets: bool) -> bytes | None:
    """
    C{ServerOptions}' C{ticketKeys}, checked.

    @raise ConfigurationError: not 80 bytes, no stateless tickets to use
        them for, or this cryptography build does not let us set them.
    """
    if ticketKeys is None:
        return None
    if not isinstance(ticketKeys, (bytes, bytearray)) or len(ticketKeys) != TICKET_KEYS_LENGTH:
        raise ConfigurationError(f"ticketKeys must be {TICKET_KEYS_LENGTH} bytes")
    if not sessionTickets:
        raise ConfigurationError("ticketKeys need session tickets (sessionTickets is off)")
    if ticketControl() is None:
        raise ConfigurationError(f"ticketKeys cannot be set here ({unavailableReason()})")
    return bytes(ticketKeys)


def _setTicketCount(context: SSL.Context, count: int) -> None:
    """
    Make C{context} send C{count} TLS 1.3 tickets per handshake, where the
    count can be set; elsewhere OpenSSL's default stays (an explicit count
    was refused by L{_ticketsPerHandshake}).  OpenSSL's own default needs
    no call, nor the symbol-table lookup behind L{ticketControl}.
    """
    if count == OPENSSL_DEFAULT_TICKETS:
        return
    control = ticketControl()
    if control is not None:
        control.setCount(context, count)


def _verifyLocationsFingerprint(trust):
    for key in ("caFile", "caPath"):
        if trust.get(key) is not None:
            yield os.path.abspath(os.fspath(trust[key])).encode()
    if trust.get("caCertificates"):
        for c in loadCertificates(list(trust["caCertificates"])):
            yield c.fingerprint(hashes.SHA256())
