"""
The protocol policy shared by server and client contexts: versions, TLS 1.2
cipher string, TLS 1.3 suites, key-exchange groups, ALPN names and the
SSLKEYLOGFILE key log.  Every setter validates while the options object is
being built, so a bad value fails there with a L{ConfigurationError}.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile

from OpenSSL import SSL

from tlsfast._foreign import pyopenssl
from tlsfast._foreign.cryptobinding import lib as _lib
from tlsfast.options._errors import ConfigurationError

log = logging.getLogger("tlsfast.options")

#: OpenSSL functions used beyond pyOpenSSL's own API, present in this
#: cryptography build or not (checked, not assumed: bindings drop symbols),
#: and callable only with the SSL* / SSL_CTX* the seam gets from pyOpenSSL.
#: SSL_CTX_set1_groups_list is absent; set1_curves_list is its alias.
HAS = {name: hasattr(_lib, name) and pyopenssl.SURFACE.usable for name in (
    "SSL_CTX_set1_curves_list",   # groups=
    "SSL_session_reused",         # ConnectionInfo.resumed
    "SSL_CTX_set_msg_callback",   # countRecords=
)}

# Versions the options layer offers.  TLS 1.0/1.1 are deliberately absent:
# cryptography's OpenSSL refuses them at its default security level anyway.
_VERSIONS = {
    "1.2": SSL.TLS1_2_VERSION,
    "1.3": SSL.TLS1_3_VERSION,
}
_VERSION_NAMES = {v: k for k, v in _VERSIONS.items()}

#: The default minimum version.
DEFAULT_MINIMUM_VERSION = "1.2"

# TLS 1.2 suites (TLS 1.3 suites are all forward-secret AEAD already).
# Named one by one, in Mozilla's "intermediate" order, so that the list is
# exactly these whatever a given OpenSSL's aliases ("ECDHE+AESGCM", ...)
# expand to.  OpenSSL's own default also admits static-RSA key exchange
# (no forward secrecy) and CBC suites with SHA-1 MACs.

#: ECDHE key exchange (ECDSA or RSA certificates) with AEAD encryption.
ECDHE_AEAD_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)

#: Finite-field DHE with AEAD: the rest of Mozilla's "intermediate" list.
DHE_AEAD_CIPHERS = (
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)

#: A server's default: ECDHE with AEAD only.  A server given DH parameters
#: (which only DHE uses) also gets L{DHE_AEAD_CIPHERS}.
DEFAULT_SERVER_CIPHERS = ECDHE_AEAD_CIPHERS

#: A client's default: Mozilla's "intermediate" TLS 1.2 list.  A client
#: cannot know whether its server has ECDHE, so it also offers DHE; either
#: way the key exchange is forward-secret and the cipher an AEAD.
DEFAULT_CLIENT_CIPHERS = f"{ECDHE_AEAD_CIPHERS}:{DHE_AEAD_CIPHERS}"


def parseVersion(value, what: str) -> int | None:
    """
    An OpenSSL version constant from "1.2", "TLSv1.3", C{ssl.TLSVersion} or
    an C{OpenSSL.SSL.TLS1_*_VERSION} constant; L{None} stays L{None}.
    """
    if value is None:
        return None
    if isinstance(value, ssl.TLSVersion):
        value = {ssl.TLSVersion.TLSv1_2: "1.2", ssl.TLSVersion.TLSv1_3: "1.3"}.get(value, value.name)
    if isinstance(value, int) and value in _VERSION_NAMES:
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("TLSV", "").replace("TLS", "").strip(" _v")
        key = key.replace("_", ".")
        if key in _VERSIONS:
            return _VERSIONS[key]
    raise ConfigurationError(
        f"unknown TLS version {value!r} for {what}: use one of "
        + ", ".join(repr(v) for v in _VERSIONS)
    )


def checkProtocols(protocols, what: str = "ALPN protocols") -> tuple[bytes, ...]:
    """ALPN names: a sequence of non-empty bytes of at most 255 bytes each."""
    if protocols is None:
        return ()
    if isinstance(protocols, (bytes, str)):
        raise ConfigurationError(f"{what} must be a list of bytes, got a single {type(protocols).__name__}")
    result = []
    for name in protocols:
        if not isinstance(name, bytes):
            raise ConfigurationError(
                f"{what} must be bytes: {name!r} is {type(name).__name__}"
                + (f" (write b{name!r})" if isinstance(name, str) else "")
            )
        if not 0 < len(name) < 256:
            raise ConfigurationError(f"{what}: {name!r} must be 1 to 255 bytes long")
        result.append(name)
    return tuple(result)


def _asBytes(value, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("ascii")
    if isinstance(value, bytes):
        return value
    if isinstance(value, (list, tuple)):
        return b":".join(_asBytes(v, what) for v in value)
    raise ConfigurationError(f"{what} must be a string, got {type(value).__name__}")


class Policy:
    """
    Validated protocol settings, applied to each pyOpenSSL Context the
    options make.

    @ivar ciphers: the TLS 1.2 cipher string: the C{ciphers} given, or else
        C{defaultCiphers} (L{None}: OpenSSL's default).
    @ivar groups: the key-exchange group list (C{b"X25519MLKEM768:X25519"}),
        or L{None} for OpenSSL's default (which, in cryptography's OpenSSL,
        already starts with the hybrid X25519MLKEM768).
    """

    def __init__(self, minimumVersion=DEFAULT_MINIMUM_VERSION, maximumVersion=None,
                 ciphers=None, tls13Ciphers=None, groups=None, keyLogFile=None,
                 defaultCiphers: str | None = None):
        self.minimumVersion = parseVersion(minimumVersion, "minimumVersion")
        self.maximumVersion = parseVersion(maximumVersion, "maximumVersion")
        if (self.minimumVersion and self.maximumVersion
                and self.minimumVersion > self.maximumVersion):
            raise ConfigurationError(
                f"minimumVersion {minimumVersion!r} is above maximumVersion {maximumVersion!r}")
        if ciphers is None:
            ciphers = defaultCiphers
        self.ciphers = None if ciphers is None else _asBytes(ciphers, "ciphers")
        self.tls13Ciphers = None if tls13Ciphers is None else _asBytes(tls13Ciphers, "tls13Ciphers")
        self.groups = None if groups is None else _asBytes(groups, "groups")
        self.keyLogPath = _keyLogPath(keyLogFile)
        # Fail now, on a scratch context, rather than at the first connection.
        self._check()

    def allows(self, version: int) -> bool:
        return ((self.minimumVersion or 0) <= version
                and (self.maximumVersion is None or version <= self.maximumVersion))

    def _check(self) -> None:
        context = SSL.Context(SSL.TLS_METHOD)
        self.apply(context)
        if self.ciphers is not None and not self.allows(SSL.TLS1_3_VERSION):
            # Only TLS 1.2 is possible: the TLS 1.2 list must be non-empty.
            # (A Connection freezes its Context: this one is a scratch copy.)
            connection = SSL.Connection(context, None)
            tls12 = [c for c in connection.get_cipher_list() if not c.startswith("TLS_")]
            if not tls12:
                raise ConfigurationError(
                    f"cipher string {self.ciphers.decode()!r} leaves no TLS 1.2 cipher "
                    "and TLS 1.3 is disabled")

    def apply(self, context: SSL.Context, keyLog: bool = True) -> None:
        """Apply (and so check) the policy on C{context}."""
        if self.minimumVersion:
            context.set_min_proto_version(self.minimumVersion)
        if self.maximumVersion:
            context.set_max_proto_version(self.maximumVersion)
        if self.ciphers is not None:
            try:
                context.set_cipher_list(self.ciphers)
            except SSL.Error as e:
                raise ConfigurationError(
                    f"cipher string {self.ciphers.decode()!r} selects no cipher: {e}") from e
        if self.tls13Ciphers is not None:
            if not self.tls13Ciphers and not self.allows(SSL.TLS1_2_VERSION):
                raise ConfigurationError("tls13Ciphers is empty and TLS 1.2 is not allowed: nothing is left")
            try:
                context.set_tls13_ciphersuites(self.tls13Ciphers)
            except SSL.Error as e:
                raise ConfigurationError(
                    f"TLS 1.3 suites {self.tls13Ciphers.decode()!r} select nothing: {e}") from e
        if self.groups is not None:
            if not HAS["SSL_CTX_set1_curves_list"]:
                raise ConfigurationError(
                    "groups= needs SSL_CTX_set1_curves_list, absent from this cryptography build")
            # SSL_CTX_set1_groups_list is absent from the binding; its alias
            # SSL_CTX_set1_curves_list takes the same (groups) list in OpenSSL 3+.
            if _lib.SSL_CTX_set1_curves_list(pyopenssl.contextPointer(context), self.groups) != 1:
                _lib.ERR_clear_error()
                raise ConfigurationError(
                    f"key-exchange groups {self.groups.decode()!r}: unknown group or empty list")
        if self.keyLogPath and keyLog:
            context.set_keylog_callback(_keyLogWriter(self.keyLogPath))


def _keyLogPath(keyLogFile) -> str | None:
    """
    The key-log path: an explicit path; L{False} for never; L{None} to honour
    C{SSLKEYLOGFILE} (logging a warning, since anyone who can read that
    file can decrypt the traffic).
    """
    if keyLogFile is False:
        return None
    if keyLogFile is None:
        keyLogFile = os.environ.get("SSLKEYLOGFILE") or None
        if keyLogFile is None:
            return None
    path = os.fspath(keyLogFile)
    log.warning("TLS secrets are being written to %s (SSLKEYLOGFILE): "
                "anyone who can read it can decrypt these connections", path)
    try:
        os.close(_openKeyLog(path))
    except OSError as e:
        raise ConfigurationError(f"cannot open key-log file {path!r}: {e.strerror or e}") from e
    return path


def _openKeyLog(path: str) -> int:
    """
    Open the key log for appending, creating it readable by its owner only
    (0600, whatever the umask): its secrets decrypt every logged connection.
    An existing file keeps the mode its owner gave it.
    """
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _keyLogWriter(path: str):
    def writeKeyLog(connection, line: bytes) -> None:
        # NSS key-log format, one secret per line; appended line by line so
        # that several processes may share the file.
        with open(_openKeyLog(path), "ab") as f:
            f.write(line + b"\n")

    return writeKeyLog


def loadDHParameters(context: SSL.Context, source) -> None:
    """Finite-field DH parameters (PEM path or bytes) for TLS 1.2 DHE ciphers."""
    if isinstance(source, (bytes, bytearray)):
        with tempfile.NamedTemporaryFile(suffix=".pem") as f:
            f.write(source)
            f.flush()
            return loadDHParameters(context, f.name)
    path = os.fspath(source)
    if not os.access(path, os.R_OK):
        raise ConfigurationError(f"cannot read DH parameters file {path!r}")
    try:
        context.load_tmp_dh(path)
    except SSL.Error as e:
        raise ConfigurationError(f"DH parameters file {path!r} is malformed: {e}") from e


def probeServer(policy: Policy, identity) -> None:
    """
    Handshake in memory with a client that accepts anything, to prove that
    this policy and certificate leave at least one way to connect (a cipher
    string with only RSA ciphers for an ECDSA key, or only ciphers below
    OpenSSL's security level, pass every syntax check and fail here).

    @raise ConfigurationError: no handshake is possible.
    """
    server = SSL.Context(SSL.TLS_METHOD)
    policy.apply(server, keyLog=False)
    identity.useIn(server)
    client = SSL.Context(SSL.TLS_METHOD)
    client.set_cipher_list(b"ALL:@SECLEVEL=0")
    if policy.groups is not None:
        _lib.SSL_CTX_set1_curves_list(pyopenssl.contextPointer(client), policy.groups)
    if policy.tls13Ciphers:
        client.set_tls13_ciphersuites(policy.tls13Ciphers)
    serverConnection = SSL.Connection(server, None)
    serverConnection.set_accept_state()
    clientConnection = SSL.Connection(client, None)
    clientConnection.set_connect_state()
    for _ in range(4):
        for this, other in ((clientConnection, serverConnection),
                            (serverConnection, clientConnection)):
            try:
                this.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error as e:
                if this is serverConnection:
                    raise ConfigurationError(
                        "no TLS handshake is possible with this configuration "
                        f"(versions, ciphers, groups and certificate key): {e}") from e
                return  # the probe client gave up after the server accepted
            try:
                data = this.bio_read(65536)
            except SSL.WantReadError:
                continue
            other.bio_write(data)
