"""
systemd's readiness protocol (C{sd_notify(3)}): with C{Type=notify} the
service manager waits for C{READY=1} before it counts the proxy as started,
and C{RELOADING=1}/C{STOPPING=1} tell it what a signal set off.

The protocol is one datagram of C{KEY=VALUE} lines to the unix socket named
by C{NOTIFY_SOCKET} (a leading C{@} names an abstract socket).  A handful of
lines, so written here rather than taken as a dependency.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    """
    Sends notifications to the service manager, when there is one.

    The socket is connected once, at construction: later sends then work
    after the proxy has dropped root (C{--user}), whatever the socket's
    permissions.  A manager that is gone is not an error: the proxy keeps
    serving.
    """

    def __init__(self, address: str | None = None):
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._socket: socket.socket | None = None
        if not address:
            return
        if address.startswith("@"):
            address = "\0" + address[1:]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            return
        self._socket = sock

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, *assignments: str) -> bool:
        """Send C{KEY=VALUE} lines as one datagram; whether it was sent."""
        if self._socket is None:
            return False
        try:
            self._socket.send("\n".join(assignments).encode() + b"\n")
        except OSError:
            return False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def reloading(self) -> bool:
        # MONOTONIC_USEC: systemd (since 253) matches it against the SIGHUP it sent.
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")
