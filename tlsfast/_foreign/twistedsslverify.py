"""
C{twisted.internet._sslverify}: Twisted's pyOpenSSL options.

Private names used: C{setupForALPN} (replaced by the ALPN fix,
L{tlsfast.twisted._alpn}), C{protosFromProtocol}, C{ClientTLSOptions}
(hostname checking and SNI for the options layer's client),
C{IOpenSSLTrustRoot} and its one method C{_addCACertsToContext}.

When the check fails (L{SURFACE}) the ALPN fix is not installed (Twisted's
callback stays) and a Twisted trust root cannot be given to
C{ClientOptions} (L{addTrustRoot} raises L{NotImplementedError}).
C{ClientTLSOptions} has no stand-in: without it the options' client cannot
be imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import _sslverify
from twisted.internet._sslverify import ClientTLSOptions, IOpenSSLTrustRoot

from tlsfast._foreign import TWISTED_TESTED, Surface, missingAttributes, missingParameters


def check() -> Surface:
    """Check the names this module uses (at import: L{SURFACE})."""
    return Surface("twisted.internet._sslverify", "Twisted", TWISTED_TESTED).require(
        missingAttributes(_sslverify, ("setupForALPN", "protosFromProtocol")),
        missingParameters(_sslverify, "setupForALPN", ("context", "acceptableProtocols")),
        missingParameters(_sslverify, "protosFromProtocol", ("tlsProto", "acceptableProtocols")),
        [] if "_addCACertsToContext" in IOpenSSLTrustRoot.names() else ["IOpenSSLTrustRoot has no _addCACertsToContext"],
    )


SURFACE = check()

#: Twisted's own C{setupForALPN}, captured before any replacement.
stockSetupForALPN: Callable[[Any, Sequence[bytes]], None] | None = getattr(_sslverify, "setupForALPN", None)


def protocolsFor(tlsProtocol: Any, acceptableProtocols: Any) -> Sequence[bytes]:
    """C{acceptableProtocols} (a list, or Twisted's per-connection callable) for C{tlsProtocol}."""
    return _sslverify.protosFromProtocol(tlsProtocol, acceptableProtocols)


def replaceSetupForALPN(setup: Callable[[Any, Sequence[bytes]], None]) -> bool:
    """
    Make Twisted's option classes set up ALPN with C{setup}.

    @return: whether it was replaced (not when L{SURFACE} is unusable).
    """
    if not SURFACE.usable:
        return False
    _sslverify.setupForALPN = setup  # type: ignore[assignment]  # replacing Twisted's function
    return True


def restoreSetupForALPN() -> None:
    """Undo L{replaceSetupForALPN}."""
    if stockSetupForALPN is not None:
        _sslverify.setupForALPN = stockSetupForALPN  # type: ignore[assignment]  # restoring Twisted's function


def addTrustRoot(trustRoot: Any, context: Any) -> None:
    """Make C{context} trust the CAs of a Twisted L{IOpenSSLTrustRoot}."""
    if not SURFACE.usable:
        raise NotImplementedError("; ".join(SURFACE.problems))
    trustRoot._addCACertsToContext(context)


__all__ = ["ClientTLSOptions", "IOpenSSLTrustRoot", "SURFACE", "addTrustRoot", "protocolsFor",
           "replaceSetupForALPN", "restoreSetupForALPN", "stockSetupForALPN"]
