"""
tlsfast: a compiled TLS record engine for Python network software, with a
drop-in accelerated transport for Twisted.

``TLSEngine`` drives the SSL* of a pyOpenSSL ``Connection`` (made with
``bio=None``) from C; ``backend_info()`` tells whether acceleration is active
and, if not, why.  Where it is not, ``TLSEngine(connection)`` raises
``AccelerationUnavailable`` naming the reasons.
"""

from typing import TYPE_CHECKING

from tlsfast._binding import BackendInfo
from tlsfast._binding import bind as _bind
from tlsfast._version import __version__

_INFO = _bind(__version__)

#: True when the compiled engine is bound to cryptography's OpenSSL.
ACCELERATED = _INFO.accelerated


class AccelerationUnavailable(RuntimeError):
    """The compiled engine cannot be used here; the reason says why."""


def _unavailable() -> AccelerationUnavailable:
    return AccelerationUnavailable("; ".join(_INFO.problems) or "unknown reason")


class _UnavailableEngine:
    """
    Stands for ``TLSEngine`` where the compiled engine cannot be used:
    constructing it raises ``AccelerationUnavailable`` with the reasons (a
    class, so ``isinstance(x, tlsfast.TLSEngine)`` still works).
    """

    __slots__ = ()

    def __init__(self, connection: object) -> None:
        raise _unavailable()


# (TYPE_CHECKING: type checkers see the compiled engine's stub, _engine.pyi.)
if TYPE_CHECKING or ACCELERATED:
    from tlsfast._engine import TLSEngine
else:  # pragma: no cover - exercised by tests/test_binding.py in subprocesses
    TLSEngine = _UnavailableEngine


def backend_info() -> BackendInfo:
    """Versions found, whether acceleration is active, and what is missing."""
    return _INFO


def require_engine() -> "type[TLSEngine]":
    """Return TLSEngine, or raise AccelerationUnavailable naming the reasons."""
    if not ACCELERATED:
        raise _unavailable()
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
