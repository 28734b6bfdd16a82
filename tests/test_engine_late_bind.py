"""
An engine takes the handshake state from OpenSSL when it is bound: bound to a
Connection whose handshake pyOpenSSL already finished, it sends and receives
at once (no do_handshake() first); bound earlier, it finishes the handshake.
"""

from __future__ import annotations

import pytest

from tests.peers import (
    PyOpenSSLPeer,
    client_context,
    pump,
    pyopenssl_connection,
    server_context,
)
from tlsfast import TLSEngine

VERSIONS = ["1.2", "1.3"]


def _pyopenssl_pair(version: str) -> tuple[PyOpenSSLPeer, PyOpenSSLPeer]:
    client = PyOpenSSLPeer(pyopenssl_connection(client_context(version), False, b"example.com"))
    server = PyOpenSSLPeer(pyopenssl_connection(server_context(version=version), True))
    return client, server


def _client_finished_server_replied(version: str) -> tuple[PyOpenSSLPeer, PyOpenSSLPeer, bytes]:
    """Three flights with pyOpenSSL; then what the server sends (its last flight and a reply), not yet delivered."""
    client, server = _pyopenssl_pair(version)
    client.start()
    assert server.receive(client.outgoing()) == b""
    assert client.receive(server.outgoing()) == b""
    assert server.receive(client.outgoing()) == b""
    return client, server, server.outgoing() + server.send(b"first reply")


@pytest.mark.parametrize("version", VERSIONS)
def test_engines_bound_after_the_handshake_are_open_at_once(version):
    client, server = _pyopenssl_pair(version)
    client.start()
    pump(client, server)
    client_engine, server_engine = TLSEngine(client.connection), TLSEngine(server.connection)
    assert client_engine.handshake_done and server_engine.handshake_done

    ciphertext = client_engine.send(b"ping")
    assert ciphertext and client_engine.unsent_plaintext == 0
    assert server_engine.receive(ciphertext) == b"ping"
    assert client_engine.receive(server_engine.send(b"pong")) == b"pong"
    assert server_engine.outgoing() == b"" and client_engine.outgoing() == b""


@pytest.mark.parametrize("version", VERSIONS)
def test_engine_bound_after_the_handshake_sends_to_a_pyopenssl_peer(version):
    client, server = _pyopenssl_pair(version)
    client.start()
    pump(client, server)
    server_engine = TLSEngine(server.connection)
    assert client.receive(server_engine.send(b"x" * 100_000)) == b"x" * 100_000
    assert server_engine.receive(client.send(b"thanks")) == b"thanks"


def test_engine_bound_after_the_handshake_reads_what_pyopenssl_left_unread():
    # TLS 1.3: the client finished its handshake with pyOpenSSL; the server's
    # session tickets and first reply are still in flight.
    client, server, in_flight = _client_finished_server_replied("1.3")

    client_engine = TLSEngine(client.connection)
    assert client_engine.handshake_done
    assert client_engine.receive(in_flight) == b"first reply"
    assert server.receive(client_engine.send(b"got it")) == b"got it"


def test_engine_bound_during_the_handshake_finishes_it():
    # TLS 1.2: the client sent its Finished with pyOpenSSL but has not seen
    # the server's yet; the server already sends application data.
    client, server, in_flight = _client_finished_server_replied("1.2")

    client_engine = TLSEngine(client.connection)
    assert not client_engine.handshake_done
    assert client_engine.send(b"early") == b"" and client_engine.unsent_plaintext == 5
    assert client_engine.receive(in_flight) == b"first reply"
    assert client_engine.handshake_done
    assert server.receive(client_engine.outgoing()) == b"early"


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_engine_bound_before_the_handshake_is_not_open(server_side):
    connection = pyopenssl_connection(
        server_context() if server_side else client_context(), server_side, b"example.com")
    engine = TLSEngine(connection)
    assert not engine.handshake_done
    assert engine.send(b"kept") == b"" and engine.unsent_plaintext == 4
