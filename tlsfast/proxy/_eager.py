"""
The proxy's eager writes: TCP transports that write at once when nothing is
queued (L{tlsfast._foreign.twistedtcp}, where they are explained; every
tlsfast Twisted user can have them through
C{tlsfast.twisted.install(eagerWrites=True)}).  The proxy uses them for
its listeners and backend connections unless C{TLSFAST_PROXY_EAGER_WRITES=0}
(to compare, or if a Twisted release breaks them), and where the seam's
check of Twisted's tcp internals passes (L{AVAILABLE}).
"""

from __future__ import annotations

import os

from tlsfast._foreign import twistedtcp
from tlsfast._foreign.twistedtcp import EagerClient, EagerConnector, EagerServer

AVAILABLE = twistedtcp.SURFACE.usable and os.environ.get("TLSFAST_PROXY_EAGER_WRITES", "1") != "0"


def abort(transport) -> None:
    """
    Abort a connection, TLS or not, sending nothing more.  Twisted's TLS
    C{abortConnection} writes a close_notify and then aborts the TCP
    transport, relying on the abort to drop it; an eager write would send it
    first.  So the TCP transport underneath is aborted first.
    """
    underneath = getattr(transport, "transport", None)
    if underneath is not None and hasattr(underneath, "abortConnection"):
        underneath.abortConnection()
    transport.abortConnection()


def connectTCP(reactor, host, port, factory, timeout, timeoutClock=None):
    """
    C{reactor.connectTCP}, with eager writes when L{AVAILABLE}, then timed
    out by C{timeoutClock} if given (else by the reactor).
    """
    if not AVAILABLE:
        return reactor.connectTCP(host, port, factory, timeout=timeout)
    return twistedtcp.connectTCP(reactor, host, port, factory, timeout, timeoutClock=timeoutClock)


def useEagerServers(port) -> None:
    """Make the connections C{port} accepts from now on eager-writing (a tcp.Port)."""
    if AVAILABLE:
        twistedtcp.useEagerServers(port)


__all__ = ["AVAILABLE", "EagerClient", "EagerConnector", "EagerServer", "abort", "connectTCP", "useEagerServers"]
