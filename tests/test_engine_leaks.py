"""
No leak: resident memory and live Python objects stay flat over 100,000
engine lifetimes and 1 GiB transferred.  (Memory is checked, not time.)
"""

from __future__ import annotations

import gc
import os

import pytest
from OpenSSL import SSL

from tests.peers import EnginePeer, client_context, engine, pump, server_context
from tlsfast import TLSEngine

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def _lifetime(context: SSL.Context, i: int) -> None:
    connection = SSL.Connection(context, None)
    connection.set_accept_state()
    eng = TLSEngine(connection)
    eng.send(b"queued before handshake")
    if i % 2:
        # the error path: translation through pyOpenSSL, queue cleared
        try:
            eng.receive(b"\x16\x03\x01\x00\x05garbage")
        except SSL.Error:
            pass
    else:
        eng.receive(b"")
    eng.outgoing()


@pytest.mark.slow
def test_100k_engine_lifetimes_are_flat():
    context = server_context()
    for i in range(10_000):  # warm up allocator pools and caches
        _lifetime(context, i)
    rss, objects = _rss(), _live_objects()
    for i in range(100_000):
        _lifetime(context, i)
    grown = _rss() - rss
    assert grown < 8 << 20, f"RSS grew {grown / 1024:.0f} KiB over 100k lifetimes"
    assert _live_objects() - objects < 100


@pytest.mark.slow
def test_handshakes_and_close_are_flat():
    server_ctx, client_ctx = server_context(), client_context()

    def session():
        client = EnginePeer(engine(client_ctx, server=False))
        server = EnginePeer(engine(server_ctx, server=True))
        client.start()
        pump(client, server)
        assert server.receive(client.send(b"x" * 5000)) == b"x" * 5000
        client.engine.shutdown()
        try:
            server.receive(client.outgoing())
        except SSL.ZeroReturnError:
            pass

    for _ in range(300):
        session()
    rss, objects = _rss(), _live_objects()
    for _ in range(2_000):
        session()
    grown = _rss() - rss
    assert grown < 8 << 20, f"RSS grew {grown / 1024:.0f} KiB over 2000 sessions"
    assert _live_objects() - objects < 100


@pytest.mark.slow
def test_one_gib_transferred_is_flat():
    client = EnginePeer(engine(client_context(), server=False))
    server = EnginePeer(engine(server_context(), server=True))
    client.start()
    pump(client, server)
    chunk = os.urandom(1 << 20)
    for _ in range(64):
        assert len(server.receive(client.engine.send(chunk))) == len(chunk)
    rss = _rss()
    received = 0
    for i in range(1024):
        plaintext = server.receive(client.engine.send(memoryview(chunk)))
        received += len(plaintext)
        if i % 8 == 0:  # the other direction too, in bigger pieces
            assert client.receive(server.engine.send(chunk * 2)) == chunk * 2
    assert received == 1 << 30
    grown = _rss() - rss
    assert grown < 16 << 20, f"RSS grew {grown / 1024:.0f} KiB over 1 GiB"
