"""
TLS ports that were listening on stock Twisted before C{install()}.

C{install()} rebinds the names Twisted builds its TLS factories from; a port
that was already listening holds a C{TLSMemoryBIOFactory} instance built
from Twisted's class, so its connections keep stock TLS until the port is
restarted.  C{install()} says so with a L{StockListenersWarning}.

(A legacy C{twisted.internet.ssl.Port} is not one of them: it starts TLS on
each connection through C{twisted.internet._newtls}, which C{install()}
rebinds.)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from twisted.internet.interfaces import IAddress, IListeningPort

from tlsfast._addresses import describeAddress
from tlsfast.twisted._protocol import StockTLSMemoryBIOFactory, TLSMemoryBIOFactory

# How deep to look through wrapping factories (policies.WrappingFactory,
# HAProxy's wrapper, ...) for a TLS factory.
_MAX_WRAPPING = 8


class StockListenersWarning(UserWarning):
    """
    C{tlsfast.twisted.install()} came after some TLS ports had started
    listening: those keep stock Twisted TLS until they are restarted.
    """


def _isStockTLS(factory: object) -> bool:
    # Ours subclass Twisted's: a stock factory is one that is not also ours.
    return (isinstance(factory, StockTLSMemoryBIOFactory)
            and not isinstance(factory, TLSMemoryBIOFactory))


def _wrapsStockTLS(factory: object) -> bool:
    for _ in range(_MAX_WRAPPING):
        if factory is None:
            return False
        if _isStockTLS(factory):
            return True
        factory = getattr(factory, "wrappedFactory", None)
    return False


def stockTLSListeners(reactor: Any) -> list[IAddress] | None:
    """
    The addresses of C{reactor}'s listening ports whose factory is (or
    wraps) a stock Twisted C{TLSMemoryBIOFactory}; L{None} when this cannot
    be told.
    """
    # The one place that leans on Twisted internals: listening ports are
    # found among the reactor's readers (IReactorFDSet.getReaders, public),
    # and a port's factory in the undocumented ``factory`` attribute of
    # tcp.Port / unix.Port.  Anything unexpected means "cannot tell".
    try:
        found = []
        for reader in reactor.getReaders():
            if IListeningPort.providedBy(reader) and _wrapsStockTLS(getattr(reader, "factory", None)):
                found.append(reader.getHost())
        return found
    except Exception:  # noqa: BLE001 -- Twisted internals changed: "cannot tell"
        return None


def warnStockListeners(reactor: Any, stacklevel: int = 2) -> None:
    """
    Warn (L{StockListenersWarning}) about C{reactor}'s TLS ports that stay
    on stock Twisted; generically if they cannot be enumerated.
    """
    if reactor is None:
        return  # no reactor imported yet: nothing can be listening
    addresses: Sequence[IAddress] | None = stockTLSListeners(reactor)
    if addresses is None:
        message = ("tlsfast.twisted.install() could not check for TLS ports already "
                   "listening; any that are keep stock Twisted TLS until restarted: "
                   "call install() before listening")
    elif addresses:
        message = ("tlsfast.twisted.install() came after these TLS ports started "
                   "listening; they keep stock Twisted TLS until restarted: "
                   + ", ".join(describeAddress(a) for a in addresses)
                   + " (call install() before listening)")
    else:
        return
    warnings.warn(message, StockListenersWarning, stacklevel=stacklevel + 1)
