"""
TCP transports that write at once when nothing is queued.

Twisted's C{write()} only queues: the bytes go out on the next reactor turn,
after an C{epoll_ctl} to watch for writability and another to stop.  A
relayed request/response pays that on each of its writes (two reactor turns
and four C{epoll_ctl} calls per round trip through the proxy).  Like
asyncio's transports, these try C{send()} first when the queue is empty and
queue only what the kernel did not take; with anything queued they behave
exactly as Twisted's, so order, back-pressure and close are unchanged.

This leans on C{twisted.internet.tcp} internals (the queue attributes, the
C{Port.transport} and C{Connector._makeTransport} hooks); L{AVAILABLE} is
false, and the proxy uses Twisted's own classes, if they are not there.
"""

from __future__ import annotations

import os

from twisted.internet import abstract, tcp


class _EagerWrite(tcp.Connection):
    def write(self, data: bytes) -> None:
        # After abortConnection (_aborting) Twisted drops what is written: so do we.
        if (data and self.connected and not self.disconnecting and not self._aborting
                and not self._writeDisconnecting
                and not self._tempDataBuffer and self.offset == len(self.dataBuffer)
                and type(data) is bytes):
            try:
                sent = self.socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # the queued path meets the error in doWrite, as usual
            if sent == len(data):
                return
            data = data[sent:]
        super().write(data)


class EagerServer(_EagerWrite, tcp.Server):
    """An accepted connection with eager writes."""


class EagerClient(_EagerWrite, tcp.Client):
    """An outgoing connection with eager writes."""


class EagerConnector(tcp.Connector):
    """C{reactor.connectTCP}, with an L{EagerClient} transport."""

    def _makeTransport(self):
        return EagerClient(self.host, self.port, self.bindAddress, self, self.reactor)


def _available() -> bool:
    # The queue write() fills and doWrite() drains, as this module assumes it.
    queue = abstract.FileDescriptor.write.__code__.co_names
    return ("_tempDataBuffer" in queue
            and all(hasattr(tcp.Server, name) for name in ("dataBuffer", "offset", "_writeDisconnecting",
                                                            "disconnecting", "connected", "_aborting"))
            and hasattr(tcp.Connector, "_makeTransport") and getattr(tcp.Port, "transport", None) is tcp.Server)


# TLSFAST_PROXY_EAGER_WRITES=0 turns it off (to compare, or if a Twisted release breaks it).
AVAILABLE = _available() and os.environ.get("TLSFAST_PROXY_EAGER_WRITES", "1") != "0"


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


def connectTCP(reactor, host, port, factory, timeout):
    """C{reactor.connectTCP} with eager writes where the reactor is a TCP one we know."""
    if not AVAILABLE or not hasattr(reactor, "addReader"):
        return reactor.connectTCP(host, port, factory, timeout=timeout)
    connector = EagerConnector(host, port, factory, timeout, None, reactor)
    connector.connect()
    return connector


def useEagerServers(port) -> None:
    """Make the connections C{port} accepts from now on eager-writing (a tcp.Port)."""
    if AVAILABLE and isinstance(port, tcp.Port):
        port.transport = EagerServer
