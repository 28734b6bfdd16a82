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

C{install(eagerWrites=True)} also makes every TCP transport write at once
when nothing is queued (see L{tlsfast._foreign.twistedtcp}), and
L{tlsfast.twisted.epollreactor} offers a lighter epoll reactor.  Everything
that touches Twisted's private names lives in the seam, L{tlsfast._foreign}:
where its checks fail, C{install()} leaves Twisted alone, as when the engine
cannot load.

Without patching anything, use the classes directly (L{TLSMemoryBIOFactory},
L{BufferingTLSTransport}, L{TLSMemoryBIOProtocol}) or L{wrapClientTLS} /
L{wrapServerTLS}.
"""

from __future__ import annotations

import sys
import warnings

from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

import tlsfast
from tlsfast._foreign import twistedtcp, twistedtls
from tlsfast.twisted._alpn import installALPNFix, uninstallALPNFix
from tlsfast.twisted._listeners import StockListenersWarning, warnStockListeners
from tlsfast.twisted._protocol import (
    BufferingTLSTransport,
    StockBufferingTLSTransport,
    StockTLSMemoryBIOFactory,
    StockTLSMemoryBIOProtocol,
    TLSConnectionObserver,
    TLSMemoryBIOFactory,
    TLSMemoryBIOProtocol,
    engineOf,
)

# Stock class -> ours.  install() rebinds every module-level name (in a
# Twisted module) that refers to a stock class; uninstall() does the reverse.
_REPLACEMENTS = {
    StockTLSMemoryBIOProtocol: TLSMemoryBIOProtocol,
    StockBufferingTLSTransport: BufferingTLSTransport,
    StockTLSMemoryBIOFactory: TLSMemoryBIOFactory,
}

_installed = False
_warned = False


class TLSFastUnavailableWarning(RuntimeWarning):
    """
    tlsfast.twisted.install() found no usable engine; Twisted was left alone.
    """


def unavailableReasons() -> list[str]:
    """
    Why L{install} would leave Twisted alone: the engine's problems
    (C{tlsfast.backend_info()}) and those of the seam's check of Twisted's
    TLS internals.  Empty when tlsfast can be installed.
    """
    reasons = [] if tlsfast.ACCELERATED else (list(tlsfast.backend_info().problems) or ["disabled"])
    return reasons + twistedtls.SURFACE.problems


def install(eagerWrites: bool = False, sendUnresumableTickets: bool = False) -> bool:
    """
    Make every Twisted TLS entry point use tlsfast.  Idempotent.

    Call it before the reactor listens: TLS ports that are listening already
    keep stock Twisted TLS until restarted, and a L{StockListenersWarning}
    names them (later listeners, outgoing connections and
    C{startTLS} all use tlsfast).

    @param eagerWrites: also make every TCP connection made from now on
        write at once when nothing is queued, instead of at the next reactor
        turn (fewer reactor turns and C{epoll_ctl} calls per request and
        response; see L{tlsfast._foreign.twistedtcp}).  Off by default: it
        changes when bytes reach the kernel.  Skipped, with a
        L{TLSFastUnavailableWarning}, where Twisted's tcp internals differ.
    @param sendUnresumableTickets: send OpenSSL's 2 TLS 1.3 session tickets
        per handshake even from a context that cannot resume them, as stock
        Twisted does.  By default a server context with stateful tickets
        and no session cache (C{CertificateOptions}' default:
        C{enableSessions} and C{enableSessionTickets} both off) sends none,
        which saves about 26 µs of server CPU per full handshake; contexts
        that can resume keep their tickets.

    @return: C{True} if tlsfast is now in use; C{False} (after one
        L{TLSFastUnavailableWarning}) if the engine cannot load here or
        Twisted's TLS internals are not as tlsfast expects, in which case
        Twisted is left untouched.
    """
    global _installed, _warned
    reasons = unavailableReasons()
    if reasons:
        if not _warned:
            _warned = True
            warnings.warn(
                f"tlsfast unavailable ({'; '.join(reasons)}); Twisted keeps its own TLS",
                TLSFastUnavailableWarning,
                stacklevel=2,
            )
        return False
    twistedtls.replaceClasses(_REPLACEMENTS)
    TLSMemoryBIOProtocol.sendUnresumableTickets = sendUnresumableTickets
    installALPNFix()
    if eagerWrites and not twistedtcp.installEagerWrites():
        warnings.warn(
            f"tlsfast eager writes unavailable ({'; '.join(twistedtcp.SURFACE.problems)}); "
            "TCP transports keep Twisted's writes",
            TLSFastUnavailableWarning,
            stacklevel=2,
        )
    _installed = True
    # Only a reactor already imported can have listeners; importing it here
    # would choose the reactor for the application.
    warnStockListeners(sys.modules.get("twisted.internet.reactor"), stacklevel=2)
    return True


def uninstall() -> None:
    """
    Restore Twisted's own TLS classes everywhere L{install} replaced them
    (and Twisted's TCP writes, if C{eagerWrites} was given).
    """
    global _installed
    twistedtls.replaceClasses({ours: stock for stock, ours in _REPLACEMENTS.items()})
    TLSMemoryBIOProtocol.sendUnresumableTickets = False
    uninstallALPNFix()
    twistedtcp.uninstallEagerWrites()
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
    return _ClientEndpoint(wrappedEndpoint, connectionCreator, clock)


def wrapServerTLS(connectionCreator, wrappedEndpoint, clock=None):
    """
    Like L{twisted.internet.endpoints.wrapServerTLS}, with tlsfast, without
    patching Twisted.
    """
    return _ServerEndpoint(wrappedEndpoint, connectionCreator, clock)


@implementer(IStreamClientEndpoint)
class _ClientEndpoint:
    """
    A client endpoint running tlsfast over another client endpoint; its
    C{connect} fires with the application's protocol.
    """

    def __init__(self, endpoint, connectionCreator, clock=None):
        self.endpoint = endpoint
        self.connectionCreator = connectionCreator
        self.clock = clock

    def connect(self, protocolFactory):
        factory = TLSMemoryBIOFactory(self.connectionCreator, True, protocolFactory, clock=self.clock)
        return self.endpoint.connect(factory).addCallback(lambda tlsProtocol: tlsProtocol.wrappedProtocol)


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
    "TLSConnectionObserver",
    "TLSFastUnavailableWarning",
    "TLSMemoryBIOFactory",
    "TLSMemoryBIOProtocol",
    "engineOf",
    "install",
    "installed",
    "unavailableReasons",
    "uninstall",
    "wrapClientTLS",
    "wrapServerTLS",
]
