"""
ALPN selection for servers (RFC 7301), shared by L{ServerOptions} and the
fixed Twisted callback that L{tlsfast.twisted.install} puts in place.

pyOpenSSL turns the callback's answer into OpenSSL's: a protocol selects it,
C{NO_OVERLAPPING_PROTOCOLS} goes on without ALPN, and an exception fails the
handshake with alert 120 C{no_application_protocol} (RFC 7301 section 3.2).
Returning C{b""} instead -- what stock Twisted does -- makes OpenSSL send
alert 80 C{internal_error}, which hides the cause from the client.
"""

from __future__ import annotations

from collections.abc import Sequence

from OpenSSL import SSL

from tlsfast.options._errors import NoApplicationProtocol


def selectProtocol(acceptable: Sequence[bytes], offered: Sequence[bytes]) -> bytes | object:
    """
    The first of C{acceptable} (server preference) that the client offered;
    C{SSL.NO_OVERLAPPING_PROTOCOLS} when the server accepts any protocol
    (C{acceptable} empty); raise L{NoApplicationProtocol} when nothing overlaps.
    """
    if not acceptable:
        return SSL.NO_OVERLAPPING_PROTOCOLS
    for protocol in acceptable:
        if protocol in offered:
            return protocol
    raise NoApplicationProtocol(offered=offered, acceptable=acceptable)
