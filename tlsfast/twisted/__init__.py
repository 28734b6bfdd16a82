"""
tlsfast for Twisted.

Add one call and change nothing else::

    import tlsfast.twisted
    tlsfast.twisted.install()

It also fixes Twisted's ALPN server callback (see L{tlsfast.twisted._alpn}):
a server configured without ALPN accepts clients that offer it.  (Contexts
that a C{CertificateOptions} built before C{install()} keep the stock
callback.)

Afterwards every Twisted TLS entry point -- C{reactor.listenSSL} /
C{connectSSL}, C{SSL4ServerEndpoint} / C{SSL4ClientEndpoint}, C{ssl:} and
C{tls:} endpoint strings, C{wrapClientTLS}, C{wrapServerTLS}, the SNI
endpoint, C{ITLSTransport.startTLS} and the HTTPS C{Agent} -- runs its TLS
records through the compiled engine.  Call it before listening: a TLS port
already listening keeps stock Twisted TLS until it is restarted, and
C{install()} names such ports in a L{StockListenersWarning}.
C{uninstall()} restores Twisted's classes.

Without patching anything, use the classes directly (L{TLSMemoryBIOFactory},
L{BufferingTLSTransport}, L{TLSMemoryBIOProtocol}) or L{wrapClientTLS} /
L{wrapServerTLS}.
"""

from __future__ import annotations

import sys
import warnings

from twisted.internet.interfaces import IStreamServerEndpoint
from zope.interface import implementer

import tlsfast
from tlsfast.twisted._alpn import installALPNFix, uninstallALPNFix
from tlsfast.twisted._listeners import StockListenersWarning, warnStockListeners
from tlsfast.twisted._protocol import (
    BufferingTLSTransport,
    StockBufferingTLSTransport,
    StockTLSMemoryBIOFactory,
    StockTLSMemoryBIOProtocol,
    TLSMemoryBIOFactory,
    TLSMemoryBIOProtocol,
)

# Stock class -> ours.  install() rebinds every module-level name (in a
# Twisted module) that refers to a stock class; uninstall() does the reverse.
_REPLACEMENTS = {
    StockTLSMemoryBIOProtocol: TLSMemoryBIOProtocol,
    StockBufferingTLSTransport: BufferingTLSTransport,
    StockTLSMemoryBIOFactory: TLSMemoryBIOFactory,
}

# Modules that bind the factory (or protocol) name at import time, besides
# twisted.protocols.tls itself.  Imported by install() when importable so the
# patch does not depend on import order; any other already-imported Twisted
# module holding one of the names is patched too.
_BINDERS = (
    "twisted.protocols.tls",
    "twisted.internet._newtls",
    "twisted.protocols._sni",
    "twisted.internet.endpoints",
)

_installed = False
_warned = False


class TLSFastUnavailableWarning(RuntimeWarning):
    """
    tlsfast.twisted.install() found no usable engine; Twisted was left alone.
    """


def _twistedModules():
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "twisted" or name.startswith("twisted.")):
            yield module


def _rebind(mapping):
    # By identity: module attributes may have any __eq__/__hash__.
    byIdentity = {id(old): (old, new) for old, new in mapping.items()}
    for module in _twistedModules():
        namespace = getattr(module, "__dict__", None)
        if not namespace:
            continue
        for attribute, value in list(namespace.items()):
            entry = byIdentity.get(id(value))
            if entry is not None and entry[0] is value:
                setattr(module, attribute, entry[1])


def install() -> bool:
    """
    Make every Twisted TLS entry point use tlsfast.  Idempotent.

    Call it before the reactor listens: TLS ports that are listening already
    keep stock Twisted TLS until restarted, and a L{StockListenersWarning}
    names them (later listeners, outgoing connections and
    C{startTLS} all use tlsfast).

    @return: C{True} if tlsfast is now in use; C{False} (after one
        L{TLSFastUnavailableWarning}) if the engine cannot load here, in which
        case Twisted is left untouched.
    """
    global _installed, _warned
    if not tlsfast.ACCELERATED:
        if not _warned:
            _warned = True
            reasons = "; ".join(tlsfast.backend_info().problems) or "disabled"
            warnings.warn(
                f"tlsfast engine unavailable ({reasons}); Twisted keeps its own TLS",
                TLSFastUnavailableWarning,
                stacklevel=2,
            )
        return False
    for name in _BINDERS:
        try:
            __import__(name)
        except ImportError:
            pass
    _rebind(_REPLACEMENTS)
    installALPNFix()
    _installed = True
    # Only a reactor already imported can have listeners; importing it here
    # would choose the reactor for the application.
    warnStockListeners(sys.modules.get("twisted.internet.reactor"), stacklevel=2)
    return True


def uninstall() -> None:
    """
    Restore Twisted's own TLS classes everywhere L{install} replaced them.
    """
    global _installed
    _rebind({ours: stock for stock, ours in _REPLACEMENTS.items()})
    uninstallALPNFix()
    _installed = False


def installed() -> bool:
    """
    Is tlsfast currently installed into Twisted?
    """
    return _installed


def wrapClientTLS(connectionCreator, wrappedEndpoint, clock=None):
    """
    Like L{twisted.internet.endpoints.wrapClientTLS}, with tlsfast, without
    patching Twisted.
    """
    from twisted.internet.endpoints import _WrapperEndpoint

    return _WrapperEndpoint(
        wrappedEndpoint,
        lambda protocolFactory: TLSMemoryBIOFactory(
            connectionCreator, True, protocolFactory, clock=clock
        ),
    )


def wrapServerTLS(connectionCreator, wrappedEndpoint, clock=None):
    """
    Like L{twisted.internet.endpoints.wrapServerTLS}, with tlsfast, without
    patching Twisted.
    """
    return _ServerEndpoint(wrappedEndpoint, connectionCreator, clock)


@implementer(IStreamServerEndpoint)
class _ServerEndpoint:
    """
    A server endpoint running tlsfast over another server endpoint.
    """

    def __init__(self, endpoint, connectionCreator, clock=None):
        self.endpoint = endpoint
        self.connectionCreator = connectionCreator
        self.clock = clock

    def listen(self, factory):
        return self.endpoint.listen(
            TLSMemoryBIOFactory(self.connectionCreator, False, factory, clock=self.clock)
        )

__all__ = [
    "BufferingTLSTransport",
    "StockListenersWarning",
    "TLSFastUnavailableWarning",
    "TLSMemoryBIOFactory",
    "TLSMemoryBIOProtocol",
    "install",
    "installed",
    "uninstall",
    "wrapClientTLS",
    "wrapServerTLS",
]
