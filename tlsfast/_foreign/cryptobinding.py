"""
cryptography's cffi binding of its bundled OpenSSL.

Private: C{cryptography.hazmat.bindings._rust._openssl}, whose C{ffi} and
C{lib} pyOpenSSL itself uses.  The engine's function table
(L{tlsfast._binding}) and the options layer's extra OpenSSL calls come from
here.  Importing this module raises L{ImportError} where the binding is not
there, as importing it directly would.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.bindings._rust import _openssl

from tlsfast._binding import TESTED_RANGES
from tlsfast._foreign import Surface, missingAttributes

#: The cffi C{FFI} and library of cryptography's OpenSSL.
ffi: Any = _openssl.ffi
lib: Any = _openssl.lib



def check() -> Surface:
    """Check the names this module uses (at import: L{SURFACE})."""
    return Surface("cryptography.hazmat.bindings._rust._openssl", "cryptography",
                   TESTED_RANGES["cryptography"]).require(missingAttributes(_openssl, ("ffi", "lib")))


SURFACE = check()
