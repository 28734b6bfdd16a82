"""
Results of 32 B to 17 KiB come from the module's few spare bytes objects
once their previous holder dropped them (_ext/_engine.pyx, "Spare
results"): reused only when nobody else holds them, with size and hash
reset, and never kept per engine.
"""

from __future__ import annotations

import os

import pytest

from tests.peers import EnginePeer, client_context, engine, pump, server_context
from tlsfast import TLSEngine, _engine


def _pair(version: str = "1.3") -> tuple[TLSEngine, TLSEngine]:
    server = engine(server_context(version=version), server=True)
    client = engine(client_context(version), server=False)
    client_peer = EnginePeer(client)
    client_peer.start()
    pump(client_peer, EnginePeer(server))
    assert client.handshake_done and server.handshake_done
    return client, server


def _drop_spares() -> None:
    """Fill the spare list with results too big to be reused for 1 KiB
    records, so each test starts from a known state."""
    client, server = _pair()
    held = [client.send(os.urandom(8000)) for _ in range(4)]
    for ciphertext in held:
        server.receive(ciphertext)


def test_a_dropped_result_is_reused_for_the_next_of_its_size() -> None:
    client, server = _pair()
    first = client.send(os.urandom(1024))
    address = id(first)
    assert _engine._spare_results()[0] >= 1
    server.receive(first)
    del first
    second = client.send(os.urandom(1024))
    assert id(second) == address
    assert len(server.receive(second)) == 1024


def test_a_held_result_is_never_reused() -> None:
    client, server = _pair()
    messages = [os.urandom(1024) for _ in range(12)]
    ciphertexts = [client.send(m) for m in messages]   # all held at once
    copies = [bytes(bytearray(c)) for c in ciphertexts]
    plaintexts = [server.receive(c) for c in ciphertexts]
    assert ciphertexts == copies
    assert plaintexts == messages
    assert len({id(c) for c in ciphertexts} | {id(p) for p in plaintexts}) == 24


@pytest.mark.parametrize("size", [64, 600, 1024, 4096, 16384])
def test_a_reused_result_has_its_own_length_and_hash(size: int) -> None:
    client, server = _pair()
    for _ in range(6):
        plaintext = server.receive(client.send(os.urandom(size)))
        ciphertext = client.send(os.urandom(size - 7))
        # hash() caches in the object: a reused one must not answer its
        # previous contents' hash, and its length is the new one's.
        assert hash(plaintext) == hash(bytes(bytearray(plaintext)))
        assert hash(ciphertext) == hash(bytes(bytearray(ciphertext)))
        assert len(plaintext) == size
        assert len(server.receive(ciphertext)) == size - 7
        del plaintext, ciphertext


def test_a_spare_result_grown_by_a_receive_is_taken_off_the_list() -> None:
    # A receive sized for one record (a spare) that finds more decrypted
    # data than planned must grow its result: _PyBytes_Resize needs the
    # only reference, so the spare list lets go of it first.
    client, server = _pair()
    records = [client.send(os.urandom(1024)) for _ in range(3)]
    assert server.receive(records[0][:600]) == b""
    joined = b"".join(records)
    received = server.receive(joined[600:])
    assert len(received) == 3 * 1024
    assert _engine._spare_results()[0] <= 4


def test_the_spares_are_few_and_shared_by_all_engines() -> None:
    _drop_spares()
    pairs = [_pair() for _ in range(10)]
    for client, server in pairs:
        assert len(server.receive(client.send(os.urandom(1024)))) == 1024
    held, idle = _engine._spare_results()
    assert held <= 4
    assert idle == held      # every result above was dropped
