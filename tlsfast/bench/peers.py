"""
In-memory TLS peers: a pyOpenSSL ``Connection`` driven as stock Twisted drives
it, a :class:`tlsfast.TLSEngine` behind the same interface, and a pump that
moves ciphertext between any two of them until both go quiet.

The benchmarks handshake their in-memory contenders with these, and the
engine tests (``tests/peers.py``) build their peers on them: a peer is
anything with ``start()``, ``receive(ciphertext) -> plaintext``,
``send(plaintext) -> ciphertext`` and ``outgoing() -> ciphertext``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from OpenSSL import SSL

from tlsfast import TLSEngine


class Peer(Protocol):
    def outgoing(self) -> bytes: ...

    def receive(self, ciphertext: bytes) -> bytes: ...


def pyopenssl_connection(context: SSL.Context, server: bool, hostname: bytes | None = None) -> SSL.Connection:
    """A memory-BIO ``Connection`` in accept (``server``) or connect state,
    asking for ``hostname`` by SNI."""
    connection = SSL.Connection(context, None)
    if server:
        connection.set_accept_state()
    else:
        connection.set_connect_state()
        if hostname:
            connection.set_tlsext_host_name(hostname)
    return connection


def _drain(read: Callable[[int], bytes], size: int) -> list[bytes]:
    """Call ``read(size)`` until pyOpenSSL says there is nothing more."""
    out = []
    while True:
        try:
            out.append(read(size))
        except SSL.WantReadError:
            return out


class PyOpenSSLPeer:
    """A plain pyOpenSSL Connection driven the way stock Twisted drives it."""

    def __init__(self, connection: SSL.Connection):
        self.connection = connection

    def start(self) -> None:
        try:
            self.connection.do_handshake()
        except SSL.WantReadError:
            pass

    def receive(self, ciphertext: bytes) -> bytes:
        if ciphertext:  # pyOpenSSL's bio_write(b"") raises WantReadError
            self.connection.bio_write(ciphertext)
        try:
            self.connection.do_handshake()
        except SSL.WantReadError:
            return b""
        return b"".join(_drain(self.connection.recv, 65536))

    def send(self, plaintext: bytes) -> bytes:
        """Encrypt plaintext; return the ciphertext (and anything queued)."""
        view = memoryview(plaintext)
        while view:
            sent = self.connection.send(view[:65536])
            view = view[sent:]
        return self.outgoing()

    def receive_eof(self) -> bytes:
        """The transport closed: what stock Twisted's connectionLost does."""
        self.connection.bio_shutdown()
        return self.connection.recv(65536)

    def outgoing(self) -> bytes:
        return b"".join(_drain(self.connection.bio_read, 65536))


class EnginePeer:
    """A :class:`tlsfast.TLSEngine` behind the peer interface."""

    def __init__(self, engine: TLSEngine):
        self.engine = engine

    @property
    def connection(self) -> Any:
        return self.engine.connection

    def start(self) -> None:
        self.engine.do_handshake()

    def receive(self, ciphertext: bytes) -> bytes:
        return self.engine.receive(ciphertext)

    def send(self, plaintext: bytes) -> bytes:
        return self.engine.send(plaintext) + self.engine.outgoing()

    def receive_eof(self) -> bytes:
        return self.engine.receive_eof()

    def outgoing(self) -> bytes:
        return self.engine.outgoing()


def pump(a: Peer, b: Peer, rounds: int = 20, a_got: list[bytes] | None = None,
         b_got: list[bytes] | None = None) -> None:
    """Move ciphertext back and forth until both sides go quiet; the plaintext
    each side got goes to ``a_got`` / ``b_got`` when given."""
    for _ in range(rounds):
        moved = False
        for sender, receiver, got in ((a, b, b_got), (b, a, a_got)):
            data = sender.outgoing()
            if data:
                moved = True
                plaintext = receiver.receive(data)
                if got is not None and plaintext:
                    got.append(plaintext)
        if not moved:
            return
    raise AssertionError("pump did not go quiet")
