"""
tlsfast's options layer: TLS configuration with secure defaults, checked
when it is built, for Twisted (C{listenSSL}, endpoints, C{startTLS}) and for
L{tlsfast.TLSEngine} alike.

    >>> from tlsfast.options import ServerOptions, ClientOptions
    >>> server = ServerOptions("server.pem")                # cert + key in one PEM
    >>> client = ClientOptions("example.com", caFile="ca.pem")

See docs/howto.md.
"""

from tlsfast.options._client import ClientOptions, SessionCache, platformTrustAvailable
from tlsfast.options._errors import (
    CertificateValidityWarning,
    ConfigurationError,
    HandshakeTimeout,
    NoApplicationProtocol,
)
from tlsfast.options._monitor import ConnectionInfo, connectionInfo
from tlsfast.options._policy import DEFAULT_CLIENT_CIPHERS, DEFAULT_SERVER_CIPHERS
from tlsfast.options._server import ServerOptions
from tlsfast.options._sources import Identity, loadCertificates, loadIdentity, loadPrivateKey

__all__ = [
    "DEFAULT_CLIENT_CIPHERS",
    "DEFAULT_SERVER_CIPHERS",
    "CertificateValidityWarning",
    "ClientOptions",
    "ConfigurationError",
    "ConnectionInfo",
    "HandshakeTimeout",
    "Identity",
    "NoApplicationProtocol",
    "ServerOptions",
    "SessionCache",
    "connectionInfo",
    "loadCertificates",
    "loadIdentity",
    "loadPrivateKey",
    "platformTrustAvailable",
]
