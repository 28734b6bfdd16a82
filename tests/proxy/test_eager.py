"""
Eager writes (tlsfast/proxy/_eager.py): sent at once when nothing is queued,
queued behind what is, in order, with Twisted's own path as the fallback.
"""

import os
import socket
import time

import pytest

from tests.proxy.helpers import TIMEOUT, clientContext, connect, echo, echoRoundTrip
from tlsfast.proxy import _eager

pytestmark = pytest.mark.skipif(not _eager.AVAILABLE, reason="this Twisted's tcp internals differ")


class FakeReactor:
    """Records (de)registrations instead of polling."""

    def __init__(self):
        self.writers = set()

    def addWriter(self, selectable):
        self.writers.add(selectable)

    def removeWriter(self, selectable):
        self.writers.discard(selectable)

    def addReader(self, selectable):
        pass

    def removeReader(self, selectable):
        pass


class FakePort:
    _realPortNumber = 0


def eagerPair():
    ours, theirs = socket.socketpair()
    reactor = FakeReactor()
    transport = _eager.EagerServer(ours, object(), ("127.0.0.1", 1), FakePort(), 1, reactor)
    return transport, theirs, reactor


def readAll(sock, size):
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def test_sent_at_once_when_nothing_is_queued():
    transport, peer, reactor = eagerPair()
    transport.write(b"hello")
    assert readAll(peer, 5) == b"hello"
    assert not reactor.writers  # no reactor turn, no writability watch
    assert transport._tempDataBuffer == []


def test_queued_behind_what_the_kernel_did_not_take():
    transport, peer, reactor = eagerPair()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    big = os.urandom(4 * 1024 * 1024)  # more than socket buffers hold
    transport.write(big)
    assert transport in reactor.writers  # the rest waits for writability
    transport.write(b"after")  # must not overtake the queued bytes
    received = bytearray()
    deadline = time.monotonic() + TIMEOUT
    while len(received) < len(big) + 5 and time.monotonic() < deadline:
        if transport in reactor.writers:
            transport.doWrite()
        peer.settimeout(0.01)
        try:
            received += peer.recv(1 << 20)
        except TimeoutError:
            pass
    assert bytes(received) == big + b"after"
    assert transport not in reactor.writers


def test_the_proxy_works_without_them(pems, start_proxy, backend, monkeypatch):
    monkeypatch.setenv("TLSFAST_PROXY_EAGER_WRITES", "0")
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    assert "eager_writes=False" in proxy.waitFor(r"event=listening")[0]
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 4 * 1024 * 1024)
        assert received == sent


def test_the_proxy_uses_them(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    assert "eager_writes=True" in proxy.waitFor(r"event=listening")[0]
