"""
tlsfast: a compiled TLS record engine for Python network software, with a
drop-in accelerated transport for Twisted.

``TLSEngine`` drives the SSL* of a pyOpenSSL ``Connection`` (made with
``bio=None``) from C; ``backend_info()`` tells whether acceleration is active
and, if not, why.
"""

from tlsfast._binding import BackendInfo, bind as _bind

from tlsfast._version import __version__

_INFO = _bind(__version__)

#: True when the compiled engine is bound to cryptography's OpenSSL.
ACCELERATED = _INFO.accelerated

if ACCELERATED:
    from tlsfast._engine import TLSEngine
else:  # pragma: no cover - exercised by tests/test_fallback.py in a subprocess
    TLSEngine = None  # type: ignore[assignment,misc]


class AccelerationUnavailable(RuntimeError):
    """The compiled engine cannot be used here; the reason says why."""


def backend_info() -> BackendInfo:
    """Versions found, whether acceleration is active, and what is missing."""
    return _INFO


def require_engine():
    """Return TLSEngine, or raise AccelerationUnavailable naming the reasons."""
    if not ACCELERATED:
        raise AccelerationUnavailable("; ".join(_INFO.problems) or "unknown reason")
    return TLSEngine


__all__ = [
    "ACCELERATED",
    "AccelerationUnavailable",
    "BackendInfo",
    "TLSEngine",
    "backend_info",
    "require_engine",
    "__version__",
]
