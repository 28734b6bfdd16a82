"""
After the handshake the engine gives the SSL* a new, empty pair of memory
BIOs once both are drained (a mem BIO never gives back the capacity its
largest content needed), and the connection stays fully usable.
"""

from __future__ import annotations

import os

import pytest
from OpenSSL import SSL

from tests.peers import EnginePeer, PyOpenSSLPeer, client_context, pump, pyopenssl_connection
from tlsfast import TLSEngine
from tlsfast.bench.engine import default_pki
from tlsfast.options import ServerOptions, connectionInfo
from tlsfast.proxy._ticketkeys import processTicketKeys

_CLIENT_CONTEXT = client_context("1.3", "aesgcm", verify=False)    # one: sessions resume on it


@pytest.fixture(scope="module")
def options() -> ServerOptions:
    pki = default_pki()
    return ServerOptions(pki.path("server.pem"), pki.path("server.key"),
                         sessionTickets=True, ticketKeys=processTicketKeys())


def _client(session: SSL.Session | None = None) -> PyOpenSSLPeer:
    connection = pyopenssl_connection(_CLIENT_CONTEXT, False, b"example.com")
    if session is not None:
        connection.set_session(session)
    return PyOpenSSLPeer(connection)


def _connect(options: ServerOptions, client: PyOpenSSLPeer) -> EnginePeer:
    server = EnginePeer(TLSEngine(options.newConnection()))
    client.start()
    pump(client, server)
    assert server.engine.handshake_done
    return server


def _bios(connection: SSL.Connection) -> tuple[object, object]:
    return connection._into_ssl, connection._from_ssl


def test_drained_bios_replaced_after_handshake(options):
    client = _client()
    server = EnginePeer(TLSEngine(options.newConnection()))
    client.start()
    first = _bios(server.connection)
    pump(client, server)
    second = _bios(server.connection)
    assert first[0] != second[0] and first[1] != second[1]
    pump(client, server)    # no more swaps: once per connection
    assert _bios(server.connection) == second


def test_connection_usable_after_replacement(options):
    client = _client()
    server = _connect(options, client)
    payload = os.urandom(1 << 20)   # many records, through the new BIOs both ways
    assert server.receive(client.send(payload)) == payload
    assert client.receive(server.send(payload)) == payload
    assert server.connection.get_cipher_name() and server.connection.get_protocol_version_name() == "TLSv1.3"
    # pyOpenSSL's own BIO calls use the new pair
    server.connection.send(b"via pyOpenSSL")
    assert client.receive(server.connection.bio_read(65536)) == b"via pyOpenSSL"
    # clean close both ways
    server.engine.shutdown()
    client.connection.bio_write(server.outgoing())
    with pytest.raises(SSL.ZeroReturnError):
        client.connection.recv(1)
    client.connection.shutdown()
    with pytest.raises(SSL.ZeroReturnError):    # the close completes, as pyOpenSSL's recv says it
        server.receive(client.outgoing())
    assert server.engine.peer_closed


def test_eof_after_replacement(options):
    client = _client()
    server = _connect(options, client)
    with pytest.raises(SSL.SysCallError):
        server.receive_eof()    # EOF without close_notify: the new rbio reports it


def test_resumption_after_replacement(options):
    client = _client()
    _connect(options, client)
    session = client.connection.get_session()
    resumed = _client(session)
    server = _connect(options, resumed)
    assert connectionInfo(server.connection).resumed


def test_not_replaced_when_two_engines_share_the_connection(options):
    client = _client()
    connection = options.newConnection()
    server, other = EnginePeer(TLSEngine(connection)), TLSEngine(connection)
    client.start()
    first = _bios(connection)
    pump(client, server)
    assert _bios(connection) == first   # the other engine holds the same BIO pointers
    assert other.do_handshake()
    ciphertext = other.send(b"through the other engine")
    assert client.receive(ciphertext + other.outgoing()) == b"through the other engine"
