"""
Failures surface exactly as pyOpenSSL raises them.

Each scenario runs twice: once against the engine and once against a plain
pyOpenSSL Connection driven the way stock Twisted drives it; the exception
type and arguments must be the same.  Afterwards the OpenSSL error queue must
be empty.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.bindings._rust import _openssl
from OpenSSL import SSL

from tests import pki
from tests.peers import (
    EnginePeer,
    PyOpenSSLPeer,
    StdlibPeer,
    client_context,
    pump,
    pyopenssl_connection,
    server_context,
)
from tlsfast import TLSEngine

STACKS = ["engine", "pyopenssl"]


def _server(stack, context):
    connection = pyopenssl_connection(context, True)
    return EnginePeer(TLSEngine(connection)) if stack == "engine" else PyOpenSSLPeer(connection)


def _client(stack, context, hostname=b"example.com"):
    connection = pyopenssl_connection(context, False, hostname)
    return EnginePeer(TLSEngine(connection)) if stack == "engine" else PyOpenSSLPeer(connection)


def _outcome(action):
    """('ok', result) or (exception type, args): what a stack did."""
    try:
        return ("ok", action())
    except Exception as exc:  # noqa: BLE001 - the type is what we compare
        return (type(exc), exc.args)


def _queue_is_clean():
    return _openssl.lib.ERR_peek_error() == 0


def _both(scenario):
    """Run scenario(stack) for both stacks; return the two outcomes."""
    outcomes = {}
    for stack in STACKS:
        outcomes[stack] = scenario(stack)
        assert _queue_is_clean(), f"{stack} left the OpenSSL error queue dirty"
    return outcomes["engine"], outcomes["pyopenssl"]


def _established(stack, version="1.3"):
    server = _server(stack, server_context(version=version))
    client = PyOpenSSLPeer(pyopenssl_connection(client_context(version), False, b"example.com"))
    client.start()
    pump(client, server)
    return client, server


# -- garbage and corruption ------------------------------------------------

GARBAGE = {
    "random": bytes(range(256)) * 4,
    "http": b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "zeros": b"\x00" * 64,
    "huge record length": b"\x16\x03\x01\xff\xff" + b"\x01" * 32,
    "ssl2 hello": b"\x80\x2e\x01\x00\x02\x00\x15" + b"\x00" * 40,
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_instead_of_client_hello(name):
    def scenario(stack):
        server = _server(stack, server_context())
        return _outcome(lambda: server.receive(GARBAGE[name]))

    engine, stock = _both(scenario)
    assert engine[0] is SSL.Error
    assert engine == stock


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_instead_of_server_hello(name):
    def scenario(stack):
        client = _client(stack, client_context())
        client.start()
        client.outgoing()
        return _outcome(lambda: client.receive(GARBAGE[name]))

    engine, stock = _both(scenario)
    assert engine[0] is SSL.Error
    assert engine == stock


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("where", [5, 20, -1])
def test_corrupted_application_record(version, where):
    def scenario(stack):
        client, server = _established(stack, version)
        ciphertext = bytearray(client.send(b"x" * 1000))
        ciphertext[where] ^= 0x40
        return _outcome(lambda: server.receive(bytes(ciphertext)))

    engine, stock = _both(scenario)
    assert engine[0] is SSL.Error
    assert engine == stock


def test_garbage_after_handshake():
    def scenario(stack):
        _, server = _established(stack)
        return _outcome(lambda: server.receive(os.urandom(0) + b"\x17\x03\x03\x00\x20" + b"\xAA" * 32))

    engine, stock = _both(scenario)
    assert engine[0] is SSL.Error
    assert engine == stock


def test_plaintext_before_a_corrupted_record_is_kept():
    client, server = _established("engine")
    good = client.send(b"kept")
    bad = bytearray(client.send(b"lost"))
    bad[-1] ^= 1
    assert server.receive(good + bytes(bad)) == b"kept"
    assert isinstance(server.engine.deferred_error, SSL.Error)
    with pytest.raises(SSL.Error):
        server.receive(b"")
    assert server.engine.deferred_error is None
    assert server.engine.take_deferred_error() is None


def test_deferred_close_does_not_block_a_reply():
    client, server = _established("engine")
    data = client.send(b"bye")
    client.connection.shutdown()
    assert server.receive(data + client.outgoing()) == b"bye"
    # replying after the peer's close_notify is legal: send() must not raise
    assert client.receive(server.engine.send(b"see you")) == b"see you"
    error = server.engine.take_deferred_error()
    assert isinstance(error, SSL.ZeroReturnError)
    assert server.engine.take_deferred_error() is None
    with pytest.raises(SSL.ZeroReturnError):  # as pyOpenSSL's recv() after close_notify
        server.receive(b"")
    assert _queue_is_clean()


# -- EOF and close_notify --------------------------------------------------

def test_eof_without_close_notify():
    def scenario(stack):
        _, server = _established(stack)
        return _outcome(server.receive_eof)

    engine, stock = _both(scenario)
    assert engine == (SSL.SysCallError, (-1, "Unexpected EOF"))
    assert engine == stock


def test_eof_in_the_middle_of_a_record():
    def scenario(stack):
        client, server = _established(stack)
        ciphertext = client.send(b"y" * 5000)
        assert server.receive(ciphertext[:100]) == b""
        return _outcome(server.receive_eof)

    engine, stock = _both(scenario)
    assert engine == (SSL.SysCallError, (-1, "Unexpected EOF"))
    assert engine == stock


def test_eof_during_handshake():
    def scenario(stack):
        server = _server(stack, server_context())
        return _outcome(server.receive_eof)

    engine, stock = _both(scenario)
    assert engine[0] is SSL.SysCallError
    assert engine == stock


def test_close_notify_from_peer():
    def scenario(stack):
        client, server = _established(stack)
        client.connection.shutdown()
        return _outcome(lambda: server.receive(client.outgoing()))

    engine, stock = _both(scenario)
    assert engine == (SSL.ZeroReturnError, ())
    assert engine == stock


def test_data_then_close_notify_in_one_chunk_loses_nothing():
    client, server = _established("engine")
    data = client.send(b"last words")
    client.connection.shutdown()
    assert server.receive(data + client.outgoing()) == b"last words"
    assert server.engine.peer_closed
    with pytest.raises(SSL.ZeroReturnError):
        server.receive(b"")
    # our reply completes the bidirectional shutdown
    assert server.engine.shutdown() is True
    assert server.engine.close_sent
    with pytest.raises(SSL.ZeroReturnError):
        client.receive(server.outgoing())


def test_close_notify_from_engine():
    client, server = _established("engine")
    assert server.engine.shutdown() is False
    assert server.engine.close_sent and not server.engine.peer_closed
    with pytest.raises(SSL.ZeroReturnError):
        client.receive(server.outgoing())
    assert client.connection.shutdown() is True
    with pytest.raises(SSL.ZeroReturnError):
        server.receive(client.outgoing())
    assert server.engine.peer_closed
    assert server.engine.shutdown() is True


def test_close_notify_with_stdlib_peer():
    server = EnginePeer(TLSEngine(pyopenssl_connection(server_context(), True)))
    client = StdlibPeer(server=False)
    client.start()
    pump(client, server)
    server.engine.shutdown()
    client.incoming.write(server.outgoing())
    client.obj.unwrap()  # stdlib sees our close_notify and answers it
    with pytest.raises(SSL.ZeroReturnError):
        server.receive(client.outgoing())
    assert server.engine.peer_closed


# -- callbacks ---------------------------------------------------------------

def _verifying_client_context(callback):
    context = client_context()
    context.set_verify(SSL.VERIFY_PEER, callback)
    return context


def _handshake_outcome(stack, client_context_, server_context_=None, hostname=b"example.com"):
    client = _client(stack, client_context_, hostname)
    server = PyOpenSSLPeer(pyopenssl_connection(server_context_ or server_context(), True))

    def run():
        client.start()
        pump(client, server)
        return client.connection.get_peer_certificate(as_cryptography=True).subject.rfc4514_string()

    return _outcome(run)


def test_verify_callback_rejecting():
    def scenario(stack):
        return _handshake_outcome(stack, _verifying_client_context(lambda *a: False))

    engine, stock = _both(scenario)
    assert engine[0] is SSL.Error
    assert "certificate verify failed" in str(engine[1])
    assert engine == stock


def test_verify_callback_raising_surfaces_its_exception():
    class Boom(Exception):
        pass

    def callback(*args):
        raise Boom("from verify")

    def scenario(stack):
        return _handshake_outcome(stack, _verifying_client_context(callback))

    engine, stock = _both(scenario)
    assert engine == (Boom, ("from verify",))
    assert engine == stock


def test_verify_callback_raising_without_verification_surfaces_after_success():
    # VERIFY_NONE: OpenSSL completes the handshake despite the callback's
    # failure; pyOpenSSL raises the kept exception on that success.
    class Boom(Exception):
        pass

    def callback(*args):
        raise Boom("kept")

    def scenario(stack):
        context = client_context()
        context.set_verify(SSL.VERIFY_NONE, callback)
        return _handshake_outcome(stack, context)

    engine, stock = _both(scenario)
    assert engine == (Boom, ("kept",))
    assert engine == stock


@pytest.mark.parametrize("verify", [True, False])
def test_clean_handshake_and_records_skip_pyopenssl_error_translation(verify):
    # Want-read and success with no callback exception kept: the engine
    # concludes what Connection._raise_ssl_error would, without calling it.
    calls = []
    peers = []
    for context, server in ((server_context(), True), (client_context(verify=verify), False)):
        connection = pyopenssl_connection(context, server, None if server else b"example.com")
        translate = connection._raise_ssl_error

        def counted(ssl, result, translate=translate):
            calls.append(result)
            return translate(ssl, result)

        connection._raise_ssl_error = counted
        peers.append(EnginePeer(TLSEngine(connection)))
    server, client = peers
    client.start()
    pump(client, server)
    assert server.engine.handshake_done and client.engine.handshake_done
    server.receive(client.engine.send(b"ping"))
    assert client.receive(server.engine.send(b"pong")) == b"pong"
    assert calls == []


def test_untrusted_server_certificate():
    def scenario(stack):
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_verify(SSL.VERIFY_PEER, lambda c, x, e, d, ok: ok)
        return _handshake_outcome(stack, context)

    engine, stock = _both(scenario)
    assert engine[0] is SSL.Error
    assert engine == stock


def _alpn_pair(stack, select, offered):
    server_ctx = server_context()
    server_ctx.set_alpn_select_callback(select)
    client_ctx = client_context()
    client_ctx.set_alpn_protos(offered)
    server = _server(stack, server_ctx)
    client = PyOpenSSLPeer(pyopenssl_connection(client_ctx, False, b"example.com"))

    def run():
        client.start()
        pump(client, server)
        return (server.connection.get_alpn_proto_negotiated(),
                client.connection.get_alpn_proto_negotiated())

    return _outcome(run)


def test_alpn_select_callback():
    def select(connection, offered):
        assert offered == [b"h2", b"http/1.1"]
        return b"http/1.1"

    engine, stock = _both(lambda stack: _alpn_pair(stack, select, [b"h2", b"http/1.1"]))
    assert engine == ("ok", (b"http/1.1", b"http/1.1"))
    assert engine == stock


def test_alpn_no_overlap_sentinel():
    engine, stock = _both(
        lambda stack: _alpn_pair(stack, lambda c, o: SSL.NO_OVERLAPPING_PROTOCOLS, [b"h2"]))
    assert engine == ("ok", (b"", b""))
    assert engine == stock


def test_alpn_select_callback_raising_surfaces_its_exception():
    def select(connection, offered):
        raise LookupError("no protocol for you")

    engine, stock = _both(lambda stack: _alpn_pair(stack, select, [b"h2"]))
    assert engine == (LookupError, ("no protocol for you",))
    assert engine == stock


def test_sni_callback_switches_certificate():
    other = pki.leaf("ecdsa", names=("other.example",))
    other_ctx = SSL.Context(SSL.TLS_METHOD)
    other_ctx.use_certificate(other.certificate)
    other_ctx.use_privatekey(other.key)
    seen = []

    def on_servername(connection):
        seen.append(connection.get_servername())
        if connection.get_servername() == b"other.example":
            connection.set_context(other_ctx)

    def scenario(stack):
        server_ctx = server_context()
        server_ctx.set_tlsext_servername_callback(on_servername)
        server = _server(stack, server_ctx)
        client = PyOpenSSLPeer(pyopenssl_connection(client_context(), False, b"other.example"))

        def run():
            client.start()
            pump(client, server)
            return client.connection.get_peer_certificate(as_cryptography=True).subject.rfc4514_string()

        return _outcome(run)

    engine, stock = _both(scenario)
    assert engine == ("ok", "CN=other.example")
    assert engine == stock
    assert seen == [b"other.example", b"other.example"]


def test_sni_callback_raising_behaves_as_pyopenssl():
    # pyOpenSSL's servername wrapper hands the exception to sys.excepthook
    # and fails the handshake with a fatal alert.  The engine must do the same.
    import sys

    reported = []

    def on_servername(connection):
        raise RuntimeError("sni boom")

    def scenario(stack):
        server_ctx = server_context()
        server_ctx.set_tlsext_servername_callback(on_servername)
        server = _server(stack, server_ctx)
        client = PyOpenSSLPeer(pyopenssl_connection(client_context(), False, b"example.com"))

        def run():
            client.start()
            pump(client, server)
            return client.connection.get_peer_certificate(as_cryptography=True).subject.rfc4514_string()

        return _outcome(run)

    old_hook = sys.excepthook
    sys.excepthook = lambda kind, value, tb: reported.append(value)
    try:
        engine, stock = _both(scenario)
    finally:
        sys.excepthook = old_hook
    assert engine[0] is SSL.Error
    assert engine == stock
    assert [str(e) for e in reported] == ["sni boom", "sni boom"]


# -- renegotiation -------------------------------------------------------------

def test_tls12_renegotiation_request_handled_as_pyopenssl():
    """A pyOpenSSL client asks to renegotiate a TLS 1.2 session."""

    def scenario(stack):
        client, server = _established(stack, "1.2")

        def run():
            assert client.connection.renegotiate()
            client.start()
            got = []
            pump(client, server, b_got=got)
            reply = server.send(b"after renegotiation")
            return b"".join(got), client.receive(reply), client.connection.total_renegotiations()

        return _outcome(run)

    engine, stock = _both(scenario)
    # OpenSSL >= 3 refuses client-initiated renegotiation by default.
    assert engine == (SSL.Error, ([("SSL routines", "", "no renegotiation")],))
    assert engine == stock


def test_tls12_server_initiated_renegotiation_handled_as_pyopenssl():
    """A pyOpenSSL server asks the engine client to renegotiate."""

    def scenario(stack):
        server = PyOpenSSLPeer(pyopenssl_connection(server_context(version="1.2"), True))
        client = _client(stack, client_context("1.2"))
        client.start()
        pump(client, server)

        def run():
            assert server.connection.renegotiate()
            server.start()
            got = []
            pump(server, client, b_got=got)
            return client.send(b"ping") != b"", server.connection.renegotiate_pending()

        return _outcome(run)

    engine, stock = _both(scenario)
    # the client renegotiates and keeps sending; nothing is left pending
    assert engine == ("ok", (True, False))
    assert engine == stock
