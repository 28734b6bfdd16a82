"""
Errors and warnings of the options layer.

Bad configuration fails when the options object is built -- never at the
first connection -- with a L{ConfigurationError} that says what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

from OpenSSL import SSL


class ConfigurationError(ValueError):
    """
    The TLS configuration cannot work: a file is unreadable or malformed,
    the key does not match the certificate, a version is unknown, ALPN names
    are not bytes, a cipher selection leaves nothing, ...
    """


class CertificateValidityWarning(UserWarning):
    """
    A configured certificate is expired or not yet valid.  A warning, not an
    error: clocks drift, and a server may be set up before its certificate
    starts being valid.
    """


class HandshakeTimeout(Exception):
    """
    The TLS handshake did not complete in time; the connection was aborted.
    Delivered as the reason of the application's C{connectionLost}.
    """


class NoApplicationProtocol(SSL.Error):
    """
    The client offered ALPN protocols and none is acceptable to this server:
    the handshake failed with alert 120 C{no_application_protocol}.

    An C{OpenSSL.SSL.Error} (what TLS code catches), whose C{args} have
    OpenSSL's shape -- C{[(library, function, reason)]} -- so code that reads
    the reason of an OpenSSL error reads C{"no application protocol"}.

    @ivar offered: the protocols the client offered.
    @ivar acceptable: the protocols this server accepts.
    """

    def __init__(self, offered: Sequence[bytes] = (), acceptable: Sequence[bytes] = ()) -> None:
        super().__init__([("SSL routines", "", "no application protocol")])
        self.offered = list(offered)
        self.acceptable = list(acceptable)

    def __str__(self) -> str:
        return (f"no application protocol: the client offered {self.offered!r}, "
                f"the server accepts {self.acceptable!r}")
