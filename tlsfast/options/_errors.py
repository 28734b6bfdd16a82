"""
Errors and warnings of the options layer.

Bad configuration fails when the options object is built -- never at the
first connection -- with a L{ConfigurationError} that says what is wrong.
"""

from __future__ import annotations


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
