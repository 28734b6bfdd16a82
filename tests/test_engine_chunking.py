"""Ciphertext split at arbitrary points reaches the engine intact (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.peers import EnginePeer, PyOpenSSLPeer, client_context, engine, pump, pyopenssl_connection, server_context


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    pieces, start = [], 0
    for point in points + [len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def _established(version):
    server = EnginePeer(engine(server_context(version=version), server=True))
    client = PyOpenSSLPeer(pyopenssl_connection(client_context(version), False, b"example.com"))
    client.start()
    pump(client, server)
    return client, server


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from(["1.2", "1.3"]),
    messages=st.lists(st.binary(min_size=0, max_size=40_000), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=30),
)
def test_random_chunking_of_application_data(version, messages, cuts):
    client, server = _established(version)
    ciphertext = b"".join(client.send(m) for m in messages)
    received = b"".join(server.receive(piece) for piece in _cut(ciphertext, cuts))
    assert received == b"".join(messages)
    # and back, the engine's ciphertext cut the same way
    reply = server.send(received)
    assert b"".join(client.receive(piece) for piece in _cut(reply, cuts)) == received


@settings(max_examples=40, deadline=None)
@given(version=st.sampled_from(["1.2", "1.3"]),
       cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_random_chunking_of_the_handshake(version, cuts):
    server = EnginePeer(engine(server_context(version=version), server=True))
    client = PyOpenSSLPeer(pyopenssl_connection(client_context(version), False, b"example.com"))
    client.start()
    for _ in range(6):
        flight = client.outgoing()
        if not flight:
            break
        for piece in _cut(flight, cuts):
            server.receive(piece)
        reply = server.outgoing()
        if reply:
            client.receive(reply)
    assert server.engine.handshake_done
    assert server.receive(client.send(b"after")) == b"after"


def test_ciphertext_written_past_the_engine_is_not_lost():
    # receive() sizes its result from what it knows the read BIO holds; bytes
    # put there behind its back (pyOpenSSL's bio_write on the same Connection)
    # make that a low estimate, which must cost a resize, not data.
    client, server = _established("1.3")
    assert server.receive(client.send(b"first")) == b"first"
    server.connection.bio_write(client.send(b"x" * 50_000))
    assert server.receive(client.send(b"last")) == b"x" * 50_000 + b"last"
