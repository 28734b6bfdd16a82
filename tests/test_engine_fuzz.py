"""
Fuzz the engine with random and mutated records (hypothesis).

Handshaking and established engines, server and client side, get random
bytes and mutations of real ciphertext.  Whatever arrives, the engine either
returns plaintext or raises a pyOpenSSL error: no other exception, no crash,
and the OpenSSL error queue is left empty.  CI runs a short burst; `make fuzz`
(TLSFAST_FUZZ_EXAMPLES=20000) is the long run, see docs/testing.md.
"""

from __future__ import annotations

import os

from cryptography.hazmat.bindings._rust import _openssl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from OpenSSL import SSL

from tests.peers import EnginePeer, PyOpenSSLPeer, client_context, engine, pump, pyopenssl_connection, server_context

EXAMPLES = int(os.environ.get("TLSFAST_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _feed(peer: EnginePeer, chunks: list[bytes]) -> None:
    for chunk in chunks:
        try:
            peer.receive(chunk)
            peer.outgoing()
        except SSL.Error:
            break
    assert _openssl.lib.ERR_peek_error() == 0


def _established(version):
    server = EnginePeer(engine(server_context(version=version), server=True))
    client = PyOpenSSLPeer(pyopenssl_connection(client_context(version), False, b"example.com"))
    client.start()
    pump(client, server)
    return client, server


@st.composite
def mutated(draw, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "set"]))
        where = draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[where] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            buf[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and buf:
            del buf[where:where + draw(st.integers(1, 16))]
        elif op == "truncate":
            del buf[where:]
        elif op == "set" and buf:
            buf[where] = draw(st.sampled_from([0, 0xFF, 0x14, 0x15, 0x16, 0x17, 0x18]))
    return bytes(buf)


@FUZZ
@given(side=st.sampled_from(["server", "client"]),
       chunks=st.lists(st.binary(max_size=2000), min_size=1, max_size=5))
def test_random_bytes_to_a_handshaking_engine(side, chunks):
    if side == "server":
        peer = EnginePeer(engine(server_context(), server=True))
    else:
        peer = EnginePeer(engine(client_context(), server=False))
        peer.start()
        peer.outgoing()
    _feed(peer, chunks)


@FUZZ
@given(data=st.data(), version=st.sampled_from(["1.2", "1.3"]))
def test_mutated_client_hello(data, version):
    client = PyOpenSSLPeer(pyopenssl_connection(client_context(version), False, b"example.com"))
    client.start()
    hello = client.outgoing()
    server = EnginePeer(engine(server_context(version=version), server=True))
    _feed(server, [data.draw(mutated(hello))])


@FUZZ
@given(data=st.data(), version=st.sampled_from(["1.2", "1.3"]))
def test_mutated_records_to_an_established_engine(data, version):
    client, server = _established(version)
    ciphertext = client.send(data.draw(st.binary(max_size=3000)))
    _feed(server, [data.draw(mutated(ciphertext)), data.draw(st.binary(max_size=64))])


@FUZZ
@given(junk=st.binary(min_size=1, max_size=4000), version=st.sampled_from(["1.2", "1.3"]))
def test_random_bytes_to_an_established_engine(junk, version):
    client, server = _established(version)
    _feed(server, [junk])
