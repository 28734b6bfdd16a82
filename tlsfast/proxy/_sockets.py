"""
The proxy's listening sockets are its own (not Twisted's C{listenTCP}), so
that several workers can share a port through C{SO_REUSEPORT}.  Standard
library only: the supervisor of C{--workers} uses it before any fork.
"""

from __future__ import annotations

import socket


def boundSocket(address: tuple[str, int], reusePort: bool) -> socket.socket:
    """
    A TCP socket bound to C{address} (port 0: any free port), not listening
    yet, with C{SO_REUSEADDR} and, if asked, C{SO_REUSEPORT}.  Raises
    C{socket.gaierror} for a host that does not resolve, C{OSError} for one
    that cannot be bound.
    """
    host, port = address
    family, _, _, _, sockaddr = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                   flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reusePort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock
