"""
Half-close: a side that finishes sending (FIN on plain TCP) still receives
what the other side has to say.
"""

import socket

from tests.proxy.helpers import clientContext, connect, readToEnd, serverContext

REQUEST = b"GET / HTTP/1.0\r\n\r\n"


def answerAfterEOF(sock):
    """Read the whole request (to EOF), then answer with its size, then close."""
    request = readToEnd(sock)
    sock.sendall(b"got %d bytes: " % len(request) + request)
    if hasattr(sock, "unwrap"):
        sock.unwrap()


def test_originate_client_half_close_gets_response(pems, start_proxy, backend):
    """Plain client sends, then FIN (like ``nc -N``): the TLS backend sees the end and answers."""
    server = backend(answerAfterEOF, serverContext(pems.backendCert, pems.backendKey))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "originate", "--backend-ca", pems.ca, "--backend-name", "backend.example")
    with connect(proxy.port) as sock:
        sock.sendall(REQUEST)
        sock.shutdown(socket.SHUT_WR)
        assert readToEnd(sock) == b"got %d bytes: " % len(REQUEST) + REQUEST
    assert proxy.waitFor(r"event=close .*by=backend")
    assert server.errors == []


def greetThenListen(received):
    def handler(sock):
        sock.sendall(b"hello; your turn\n")
        sock.shutdown(socket.SHUT_WR)  # FIN: we are done sending, still reading
        received.append(readToEnd(sock))
    return handler


def test_terminate_backend_half_close_still_reads_client(pems, start_proxy, backend):
    """
    Plain backend sends, then FIN: the client gets everything and a
    close_notify, and what it sends afterwards still reaches the backend.
    """
    received = []
    server = backend(greetThenListen(received))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        assert readToEnd(sock) == b"hello; your turn\n"  # ends with the proxy's close_notify
        sock.sendall(b"late words\n")
        sock.unwrap()
    server.close()
    assert received == [b"late words\n"]
    assert proxy.waitFor(r"event=close .*by=backend")
