"""
The proxy's reactor: the seam's L{LeanEPollReactor} (Twisted's epoll
reactor minus the legacy log context around every I/O event; see
L{tlsfast._foreign.twistedepoll}, and
L{tlsfast.twisted.epollreactor.install} for every tlsfast Twisted user).
The proxy logs through its own logger and keeps no use for the C{system}
prefix that context gives.  An exception escaping an event is still logged
(through L{twisted.python.log}, which the proxy routes to its log) and the
loop goes on.

L{AVAILABLE} is false, and the proxy runs on Twisted's default reactor, when
the seam's check of C{EPollReactor}'s internals fails or there is no epoll.
C{TLSFAST_PROXY_REACTOR=twisted} chooses Twisted's default reactor too (to
compare, or as an escape hatch).
"""

from __future__ import annotations

import os

from twisted.python import log  # noqa: F401 -- where escaping exceptions go; tests patch log.err through it

from tlsfast._foreign import twistedepoll


def _available() -> bool:
    return twistedepoll.SURFACE.usable and os.environ.get("TLSFAST_PROXY_REACTOR", "proxy") != "twisted"


AVAILABLE = _available()


if twistedepoll.EPollReactor is not None:
    class ProxyReactor(twistedepoll.LeanEPollReactor):
        """The proxy's reactor (named so in its log lines)."""


def install() -> bool:
    """
    Install L{ProxyReactor} as the global reactor, if it is available and no
    reactor has been chosen yet.  Returns whether it was installed.
    """
    if not AVAILABLE:
        return False
    return twistedepoll.install(ProxyReactor)


__all__ = ["AVAILABLE", "install"]
