"""
A lighter epoll reactor for tlsfast Twisted users.

Like C{twisted.internet.epollreactor}, install it before anything imports
C{twisted.internet.reactor}::

    from tlsfast.twisted import epollreactor
    epollreactor.install()

L{LeanEPollReactor} is Twisted's C{EPollReactor} dispatching each I/O
event straight to its handler, without the legacy log context (the
C{system} prefix of C{twisted.python.log.msg} calls made during the event)
that Twisted builds around every event.  Where Twisted's epoll reactor
internals are not as tlsfast expects, or there is no epoll,
L{install} installs nothing and returns C{False}: Twisted then chooses its
default reactor as usual.  (The seam, L{tlsfast._foreign.twistedepoll},
holds the implementation.)
"""

from __future__ import annotations

from tlsfast._foreign import twistedepoll

#: Why the lean reactor cannot be used here; empty when it can.
problems = twistedepoll.SURFACE.problems

if twistedepoll.EPollReactor is not None:
    LeanEPollReactor = twistedepoll.LeanEPollReactor


def install() -> bool:
    """
    Install a L{LeanEPollReactor} as the global reactor.

    @return: whether it was installed: C{False} when a reactor is already
        installed or L{problems} is not empty.
    """
    return twistedepoll.install()


__all__ = ["LeanEPollReactor", "install", "problems"]
