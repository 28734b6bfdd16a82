"""
Misuse of the engine raises an exception and never crashes the interpreter:
objects that are not memory-BIO Connections, calls re-entered from OpenSSL
callbacks, calls from another thread while one runs, and the private binding
API called again with other values.  (Before the guard, several of these
scenarios ended the process with a segmentation fault.)
"""

from __future__ import annotations

import threading
from unittest.mock import MagicMock

import pytest
from cryptography.hazmat.bindings._rust import _openssl
from OpenSSL import SSL

from tests.peers import (
    EnginePeer,
    PyOpenSSLPeer,
    client_context,
    pump,
    pyopenssl_connection,
    server_context,
)
from tlsfast import TLSEngine, _binding, _engine

VERSIONS = ["1.2", "1.3"]

# The calls that enter OpenSSL's state machine: never re-entrant.
STATE_MACHINE_CALLS = {
    "receive()": lambda engine: engine.receive(b""),
    "receive_eof()": lambda engine: engine.receive_eof(),
    "send()": lambda engine: engine.send(b"too early"),
    "do_handshake()": lambda engine: engine.do_handshake(),
    "shutdown()": lambda engine: engine.shutdown(),
}
# Reads: allowed from a callback of the running call, refused from elsewhere.
READS = {
    "outgoing()": lambda engine: engine.outgoing(),
    "outgoing_pending": lambda engine: engine.outgoing_pending,
    "plaintext_pending": lambda engine: engine.plaintext_pending,
    "peer_closed": lambda engine: engine.peer_closed,
    "close_sent": lambda engine: engine.close_sent,
}


def _reentered(called: str, running: str) -> str:
    return (f"TLSEngine is busy: {called} called from inside {running} on the same "
            "Connection (from one of its callbacks); OpenSSL cannot be re-entered")


def _from_another_thread(called: str, running: str) -> str:
    return (f"TLSEngine is busy: {called} called from another thread while {running} "
            "runs on the same Connection; drive an engine from one thread")


def _client_calling_back(version: str, on_verify) -> TLSEngine:
    """An engine client whose verify callback runs ``on_verify(engine)`` once."""
    holder: dict = {}

    def verify(connection, certificate, errno, depth, ok):
        if not holder.get("called"):
            holder["called"] = True
            on_verify(holder["engine"])
        return ok

    context = client_context(version)
    context.set_verify(SSL.VERIFY_PEER, verify)
    holder["engine"] = TLSEngine(pyopenssl_connection(context, False, b"example.com"))
    return holder["engine"]


def _connect(client_engine: TLSEngine, version: str) -> tuple[EnginePeer, PyOpenSSLPeer]:
    client = EnginePeer(client_engine)
    server = PyOpenSSLPeer(pyopenssl_connection(server_context(version=version), True))
    client.start()
    pump(client, server)
    return client, server


def _assert_works(client: EnginePeer, server: PyOpenSSLPeer) -> None:
    assert client.engine.handshake_done
    assert server.receive(client.send(b"ping")) == b"ping"
    assert client.receive(server.send(b"pong")) == b"pong"


def _outcome(call) -> str | None:
    try:
        call()
    except RuntimeError as exc:
        return str(exc)
    return None


# -- what can be bound -------------------------------------------------------

@pytest.mark.parametrize("thing", [MagicMock(), object(), None, b"", 1],
                         ids=["MagicMock", "object", "None", "bytes", "int"])
def test_engine_refuses_what_is_not_a_connection(thing):
    with pytest.raises(TypeError, match="^expected an OpenSSL.SSL.Connection, not "):
        TLSEngine(thing)


@pytest.mark.parametrize("attribute", ["_ssl", "_into_ssl", "_from_ssl"])
@pytest.mark.parametrize("fake", ["MagicMock", "int", "str", "another-pointer-type"])
def test_engine_refuses_a_connection_whose_pointers_were_replaced(attribute, fake):
    connection = pyopenssl_connection(server_context(), True)
    replacement = {
        "MagicMock": MagicMock(),
        "int": 4096,
        "str": "SSL *",  # (ffi.typeof would parse it as a type)
        "another-pointer-type": connection._from_ssl if attribute == "_ssl" else connection._ssl,
    }[fake]
    setattr(connection, attribute, replacement)
    with pytest.raises(TypeError, match=f"^Connection.{attribute} is .*, not a cffi "):
        TLSEngine(connection)


def test_engine_refuses_a_null_pointer():
    connection = pyopenssl_connection(server_context(), True)
    connection._ssl = _openssl.ffi.cast("SSL *", 0)
    with pytest.raises(ValueError, match="Connection._ssl is a NULL pointer"):
        TLSEngine(connection)


def test_a_connection_subclass_is_accepted():
    class AuditedConnection(SSL.Connection):
        pass

    connection = AuditedConnection(client_context(), None)
    connection.set_connect_state()
    connection.set_tlsext_host_name(b"example.com")
    _assert_works(*_connect(TLSEngine(connection), "1.3"))


# -- re-entrancy -------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("called", sorted(STATE_MACHINE_CALLS))
def test_state_machine_call_from_a_callback_raises(version, called):
    seen = []
    engine = _client_calling_back(
        version, lambda engine: seen.append(_outcome(lambda: STATE_MACHINE_CALLS[called](engine))))
    client, server = _connect(engine, version)
    # The server's certificate is verified inside the client's receive().
    assert seen == [_reentered(called, "receive()")]
    # Refused before touching OpenSSL: the handshake went on undisturbed.
    _assert_works(client, server)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_refusal_propagates_from_the_callback_like_any_exception(version):
    engine = _client_calling_back(version, lambda engine: engine.receive(b""))
    with pytest.raises(RuntimeError) as caught:
        _connect(engine, version)
    assert str(caught.value) == _reentered("receive()", "receive()")
    # The flag was released on the way out: the next call is OpenSSL's to judge.
    assert engine.outgoing()  # the alert telling the server why
    with pytest.raises(SSL.Error):
        engine.receive(b"")


@pytest.mark.parametrize("version", VERSIONS)
def test_reads_from_a_callback_are_allowed(version):
    # As pyOpenSSL's bio_read and pending are: Twisted's failVerification
    # drains the alert from inside the handshake's info callback.
    seen = []
    engine = _client_calling_back(
        version, lambda engine: seen.extend(read(engine) for read in READS.values()))
    client, server = _connect(engine, version)
    assert len(seen) == len(READS)
    _assert_works(client, server)


@pytest.mark.parametrize("version", VERSIONS)
def test_ciphertext_drained_from_a_callback_keeps_its_place(version):
    # failVerification's path: pyOpenSSL's shutdown() inside the info callback
    # at the end of the handshake, then the engine's outgoing().
    drained = []

    def info(connection, where, ret):
        if where & SSL.SSL_CB_HANDSHAKE_DONE and not drained:
            connection.shutdown()
            drained.append(holder["engine"].outgoing())

    context = client_context(version)
    context.set_info_callback(info)
    holder = {"engine": TLSEngine(pyopenssl_connection(context, False, b"example.com"))}
    client = EnginePeer(holder["engine"])
    server = PyOpenSSLPeer(pyopenssl_connection(server_context(version=version), True))
    client.start()
    for _ in range(2):  # TLS 1.3: one round trip; 1.2: two
        assert server.receive(client.outgoing()) == b""
        assert client.receive(server.outgoing()) == b""
        if drained:
            break
    assert drained and drained[0]  # (TLS 1.3: the client's Finished, then close_notify)
    with pytest.raises(SSL.ZeroReturnError):
        server.receive(drained[0] + client.outgoing())
    assert server.connection.get_shutdown() & SSL.RECEIVED_SHUTDOWN


def test_outgoing_from_a_callback_of_send_raises():
    # A TLS 1.2 server renegotiates: send()'s SSL_write starts the handshake
    # and runs the info callback.
    seen = []

    def info(connection, where, ret):
        if holder.get("armed"):
            seen.append(_outcome(holder["engine"].outgoing))

    context = server_context(version="1.2")
    context.set_info_callback(info)
    holder = {"engine": TLSEngine(pyopenssl_connection(context, True))}
    server = EnginePeer(holder["engine"])
    client = PyOpenSSLPeer(pyopenssl_connection(client_context("1.2"), False, b"example.com"))
    client.start()
    pump(client, server)
    assert server.connection.renegotiate()
    holder["armed"] = True
    ciphertext = server.engine.send(b"during renegotiation")
    holder["armed"] = False
    assert seen and set(seen) == {(
        "TLSEngine is busy: outgoing() called from inside send() on the same Connection "
        "(from one of its callbacks); send() returns the ciphertext queued before it, "
        "so taking later bytes now would reorder the stream")}
    got = []
    assert client.receive(ciphertext) == b"during renegotiation"
    pump(client, server, b_got=got)
    assert server.receive(client.send(b"after")) == b"after"


def test_engines_bound_to_one_connection_share_the_flag():
    seen = []
    engine = _client_calling_back(
        "1.3", lambda engine: seen.append(_outcome(lambda: second.receive(b""))))
    second = TLSEngine(engine.connection)
    client, server = _connect(engine, "1.3")
    assert seen == [_reentered("receive()", "receive()")]
    _assert_works(client, server)


# -- threads -----------------------------------------------------------------

def test_another_thread_is_refused_while_a_call_runs():
    inside, release = threading.Event(), threading.Event()

    def on_verify(engine):
        inside.set()
        release.wait(30)  # (releases the GIL: the main thread runs meanwhile)

    engine = _client_calling_back("1.3", on_verify)
    result: dict = {}

    def handshake():
        try:
            result["peers"] = _connect(engine, "1.3")
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            result["error"] = exc

    thread = threading.Thread(target=handshake)
    thread.start()
    try:
        assert inside.wait(30)
        outcomes = {name: _outcome(lambda call=call: call(engine))
                    for name, call in {**STATE_MACHINE_CALLS, **READS}.items()}
    finally:
        release.set()
        thread.join(30)
    assert outcomes == {name: _from_another_thread(name, "receive()") for name in outcomes}
    assert "error" not in result, result["error"]
    _assert_works(*result["peers"])


# -- reference_transfer ------------------------------------------------------

def _handshaken_pair():
    client = PyOpenSSLPeer(pyopenssl_connection(client_context(), False, b"example.com"))
    server = PyOpenSSLPeer(pyopenssl_connection(server_context(), True))
    client.start()
    pump(client, server)
    return client.connection, server.connection


def test_reference_transfer_refuses_what_is_not_a_connection():
    client, server = _handshaken_pair()
    with pytest.raises(TypeError, match="^expected an OpenSSL.SSL.Connection, not MagicMock"):
        _engine.reference_transfer(client, MagicMock(), 64, 64)
    with pytest.raises(ValueError, match="two different Connections"):
        _engine.reference_transfer(client, client, 64, 64)
    assert _engine.reference_transfer(client, server, 64, 640) == 640


def test_reference_transfer_refuses_a_busy_connection():
    client, server = _handshaken_pair()
    seen = []
    engine = _client_calling_back(
        "1.3", lambda engine: seen.append(
            _outcome(lambda: _engine.reference_transfer(engine.connection, server, 64, 64))))
    _connect(engine, "1.3")
    assert seen == [_reentered("reference_transfer()", "receive()")]
    assert _engine.reference_transfer(client, server, 64, 640) == 640


# -- the binding API ---------------------------------------------------------

def _addresses() -> dict[str, int]:
    addresses, problems = _binding.check_function_table(_openssl.ffi, _openssl.lib)
    assert problems == []
    return addresses


@pytest.mark.parametrize("bad", ["another-functions", "arbitrary", "missing"])
def test_function_table_refuses_other_addresses(bad):
    addresses = _addresses()
    if bad == "missing":
        del addresses["SSL_read"]
        expected = "no address for OpenSSL function SSL_read"
    else:
        addresses["SSL_read"] = addresses["SSL_write"] if bad == "another-functions" else 4096
        expected = f"{addresses['SSL_read']} is not the address of OpenSSL function SSL_read"
    with pytest.raises(ValueError, match=f"^{expected}$"):
        _engine.install_function_table(addresses)
    # The same table again changes nothing; the engine still works.
    _engine.install_function_table(_addresses())
    _assert_works(*_connect(TLSEngine(pyopenssl_connection(client_context(), False, b"example.com")),
                            "1.3"))


def test_python_helpers_cannot_be_replaced():
    ffi, lib = _openssl.ffi, _openssl.lib
    with pytest.raises(RuntimeError, match="already bound"):
        _engine.install_python_helpers(ffi, lib, Exception, MagicMock)
    _engine.install_python_helpers(ffi, lib, SSL.WantReadError, SSL.Connection)  # the same: no-op
    with pytest.raises(TypeError):
        TLSEngine(MagicMock())
