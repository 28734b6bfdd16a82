"""
The engine against independent TLS stacks, in memory: pyOpenSSL Connections
driven the way stock Twisted drives them, and CPython's ssl.SSLObject (the
system OpenSSL 3.0, a different build from the engine's).
"""

from __future__ import annotations

import hashlib
import os

import pytest
from OpenSSL import SSL

from tests.peers import (
    EnginePeer,
    PyOpenSSLPeer,
    StdlibPeer,
    client_context,
    engine,
    pump,
    pyopenssl_connection,
    server_context,
)
from tlsfast import TLSEngine

VERSIONS = ["1.2", "1.3"]
SUITES = ["aesgcm", "chacha"]
KINDS = ["ecdsa", "rsa"]
SIZES = [0, 1, 16383, 16384, 16385, 1 << 20]


def _engine_server(kind="ecdsa", version="1.3", suite="aesgcm"):
    return EnginePeer(engine(server_context(kind, version, suite), server=True))


def _engine_client(version="1.3", suite="aesgcm"):
    return EnginePeer(engine(client_context(version, suite), server=False))


def _pyopenssl_client(version="1.3", suite="aesgcm"):
    return PyOpenSSLPeer(pyopenssl_connection(client_context(version, suite), False, b"example.com"))


def _pyopenssl_server(kind="ecdsa", version="1.3", suite="aesgcm"):
    return PyOpenSSLPeer(pyopenssl_connection(server_context(kind, version, suite), True))


def _handshake(client, server):
    client.start()
    pump(client, server)


def _payload(size: int) -> bytes:
    return (os.urandom(64) * (size // 64 + 1))[:size]


def _transfer(sender, receiver, payload: bytes) -> bytes:
    """Send payload through sender's send/outgoing; return what receiver got."""
    ciphertext = sender.send(payload)
    return receiver.receive(ciphertext) if ciphertext else b""


def _cipher_family(engine_peer) -> str:
    name = engine_peer.engine.connection.get_cipher_name()
    return "chacha" if "CHACHA" in name else "aesgcm"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("kind", KINDS)
def test_engine_server_with_pyopenssl_client(kind, suite, version):
    server = _engine_server(kind, version, suite)
    client = _pyopenssl_client(version, suite)
    _handshake(client, server)
    assert server.engine.handshake_done
    assert server.engine.connection.get_protocol_version_name() == f"TLSv{version}"
    assert _cipher_family(server) == suite
    for size in SIZES:
        payload = _payload(size)
        assert _transfer(client, server, payload) == payload
        assert _transfer(server, client, payload) == payload


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("kind", KINDS)
def test_engine_client_with_stdlib_server(kind, suite, version):
    client = _engine_client(version, suite)
    server = StdlibPeer(server=True, version=version, suite=suite, kind=kind)
    _handshake(client, server)
    assert client.engine.handshake_done
    assert client.engine.connection.get_protocol_version_name() == f"TLSv{version}"
    assert _cipher_family(client) == suite
    for size in SIZES:
        payload = _payload(size)
        assert _transfer(client, server, payload) == payload
        assert _transfer(server, client, payload) == payload


@pytest.mark.parametrize("version", VERSIONS)
def test_engine_server_with_stdlib_client(version):
    server = _engine_server("rsa", version)
    client = StdlibPeer(server=False, version=version)
    _handshake(client, server)
    for size in SIZES:
        payload = _payload(size)
        assert _transfer(client, server, payload) == payload
        assert _transfer(server, client, payload) == payload


def test_engine_to_engine_and_pyopenssl_client_engine_server_agree():
    client, server = _engine_client(), _engine_server()
    _handshake(client, server)
    payload = _payload(300_000)
    assert server.receive(client.send(payload)) == payload
    assert client.receive(server.send(payload)) == payload


@pytest.mark.slow
@pytest.mark.parametrize("peer", ["pyopenssl", "stdlib"])
def test_64_mib_each_way(peer):
    server = _engine_server()
    client = _pyopenssl_client() if peer == "pyopenssl" else StdlibPeer(server=False)
    _handshake(client, server)
    payload = _payload(64 << 20)
    digest = hashlib.sha256(payload).digest()
    assert hashlib.sha256(_transfer(client, server, payload)).digest() == digest
    assert hashlib.sha256(_transfer(server, client, payload)).digest() == digest


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_send_accepts_any_buffer(kind):
    client, server = _engine_client(), _engine_server()
    _handshake(client, server)
    payload = _payload(40_000)
    assert server.receive(client.send(kind(payload))) == payload
    # a non-contiguous buffer is refused, not misread
    with pytest.raises(BufferError):
        client.send(memoryview(payload)[::2])


def test_receive_accepts_any_buffer():
    client, server = _engine_client(), _engine_server()
    _handshake(client, server)
    ciphertext = client.send(b"hello")
    assert server.receive(memoryview(bytearray(ciphertext))) == b"hello"


def test_ciphertext_one_byte_at_a_time():
    client, server = _pyopenssl_client(), _engine_server()
    client.start()
    # handshake, one byte per receive()
    for _ in range(10):
        data = client.outgoing()
        if not data and server.engine.handshake_done:
            break
        for i in range(len(data)):
            assert server.receive(data[i:i + 1]) == b""
        reply = server.outgoing()
        if reply:
            client.receive(reply)
    assert server.engine.handshake_done
    payload = _payload(40_000)
    ciphertext = client.send(payload)
    got = b"".join(server.receive(ciphertext[i:i + 1]) for i in range(len(ciphertext)))
    assert got == payload


def test_plaintext_sent_before_handshake_is_delivered_in_order():
    client, server = _engine_client(), _engine_server()
    assert client.send(b"early ") == b""
    assert client.send(bytearray(b"bird")) == b""
    assert client.engine.unsent_plaintext == 10
    got = []
    client.start()
    pump(client, server, b_got=got)
    assert b"".join(got) == b"early bird"
    assert client.engine.unsent_plaintext == 0


def test_bind_requires_memory_bios():
    import socket

    with socket.socket() as sock:
        connection = SSL.Connection(SSL.Context(SSL.TLS_METHOD), sock)
        with pytest.raises(TypeError, match="bio=None"):
            TLSEngine(connection)


def test_engine_keeps_connection_alive():
    import gc
    import weakref

    connection = pyopenssl_connection(server_context(), True)
    ref = weakref.ref(connection)
    eng = TLSEngine(connection)
    del connection
    gc.collect()
    assert ref() is eng.connection
    del eng
    gc.collect()
    assert ref() is None


def test_byte_counters():
    client, server = _engine_client(), _engine_server()
    _handshake(client, server)
    handshake_in = server.engine.ciphertext_received
    handshake_out = server.engine.ciphertext_sent
    assert handshake_in > 0 and handshake_out > 0
    assert server.engine.plaintext_received == server.engine.plaintext_sent == 0
    ciphertext = client.send(b"x" * 40_000)
    assert server.receive(ciphertext) == b"x" * 40_000
    assert server.engine.plaintext_received == 40_000
    assert server.engine.ciphertext_received == handshake_in + len(ciphertext)
    assert client.engine.plaintext_sent == 40_000
    reply = server.engine.send(b"y" * 100)
    assert server.engine.plaintext_sent == 100
    assert server.engine.ciphertext_sent == handshake_out + len(reply)
