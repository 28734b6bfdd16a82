"""
The key the proxy's TLS 1.3 session tickets are encrypted with.

One key per proxy, made before C{--workers} forks, so that a ticket issued by
one worker is resumed by any other (the kernel spreads a client's
connections over the workers) and by the listener contexts a SIGHUP reload
builds.  It lives in memory only, for the life of the proxy: a restart
invalidates every ticket, as a haproxy or nginx restart does.
"""

from __future__ import annotations

import secrets

from tlsfast._foreign.ticketcontrol import TICKET_KEYS_LENGTH, ticketControl

_keys: list[bytes] = []


def processTicketKeys() -> bytes | None:
    """
    The proxy's ticket key, made on first use; L{None} where this
    cryptography build does not let us set one (each context then keeps a
    key of its own, and tickets resume only in the worker that issued them).
    """
    if ticketControl() is None:
        return None
    if not _keys:
        _keys.append(secrets.token_bytes(TICKET_KEYS_LENGTH))
    return _keys[0]
