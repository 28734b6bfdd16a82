"""
pyOpenSSL internals.

Private names used: C{Connection._ssl} and C{Context._context} (the
C{SSL*} / C{SSL_CTX*} for OpenSSL calls pyOpenSSL does not wrap),
C{Connection._reverse_mapping} (its C{SSL*} -> Connection map, what its own
callbacks use), C{Context._info_callback} (where it keeps the info callback
alive), C{OpenSSL._util} (C{ffi}, C{text_to_bytes_and_warn}) and
C{SSL._CERTIFICATE_FILE_LOCATIONS} / C{_CERTIFICATE_PATH_LOCATIONS}.

When the check fails (L{SURFACE}), L{connectionForSSL} is unavailable
(L{installFilteredInfoCallback} returns C{False}, so callers use the public
C{set_info_callback}) and L{sslPointer} / L{contextPointer} raise
L{NotImplementedError}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from OpenSSL import SSL, _util

from tlsfast._binding import TESTED_RANGES
from tlsfast._foreign import Surface, missingAssignments, missingAttributes
from tlsfast._foreign.cryptobinding import ffi as _ffi
from tlsfast._foreign.cryptobinding import lib as _lib

#: pyOpenSSL's cffi C{FFI} (cryptography's, when the two agree).
ffi: Any = _util.ffi



def check() -> Surface:
    """Check the names this module uses (at import: L{SURFACE})."""
    return Surface("pyOpenSSL internals", "pyOpenSSL", TESTED_RANGES["pyOpenSSL"]).require(
        missingAttributes(_util, ("ffi", "text_to_bytes_and_warn")),
        missingAttributes(SSL.Connection, ("_reverse_mapping",)),
        missingAssignments(SSL.Connection.__init__, ("_ssl",)),
        missingAssignments(SSL.Context.__init__, ("_context", "_info_callback")),
    )


SURFACE = check()


def textToBytes(label: str, data: Any) -> bytes:
    """pyOpenSSL's own text-to-bytes conversion, with its DeprecationWarning."""
    return _util.text_to_bytes_and_warn(label, data)


def _require() -> None:
    if not SURFACE.usable:
        raise NotImplementedError("; ".join(SURFACE.problems))


def sslPointer(connection: SSL.Connection) -> Any:
    """The C{SSL*} of C{connection}, for OpenSSL calls pyOpenSSL does not wrap."""
    _require()
    return connection._ssl


def contextPointer(context: SSL.Context) -> Any:
    """The C{SSL_CTX*} of C{context}."""
    _require()
    return context._context


def connectionForSSL(ssl: Any) -> SSL.Connection | None:
    """The L{SSL.Connection} of an C{SSL*} (in an OpenSSL callback), or L{None}."""
    _require()
    return SSL.Connection._reverse_mapping.get(ssl)


def installFilteredInfoCallback(context: SSL.Context, wanted: int,
                                callback: Callable[[SSL.Connection, int, int], None]) -> bool:
    """
    Set C{context}'s info callback to call C{callback(connection, where,
    ret)} only for events in the C{wanted} mask.  OpenSSL calls the info
    callback ~20 times per handshake; filtering before pyOpenSSL's wrapper
    looks the Connection up saves two Python calls per unwanted event.

    @return: C{False} (nothing installed) when pyOpenSSL's internals are not
        as expected: then use C{context.set_info_callback}.
    """
    if not SURFACE.usable:
        return False
    reverse = SSL.Connection._reverse_mapping

    def filtered(ssl: Any, where: int, ret: int) -> None:
        if where & wanted:
            callback(reverse[ssl], where, ret)

    # Kept where pyOpenSSL keeps its own: alive as long as the Context.
    context._info_callback = _ffi.callback("void (*)(const SSL *, int, int)", filtered)
    _lib.SSL_CTX_set_info_callback(context._context, context._info_callback)
    return True


def certificateLocations() -> list[str]:
    """pyOpenSSL's fallback CA file and directory locations (empty if it has none)."""
    return [*getattr(SSL, "_CERTIFICATE_FILE_LOCATIONS", []), *getattr(SSL, "_CERTIFICATE_PATH_LOCATIONS", [])]
