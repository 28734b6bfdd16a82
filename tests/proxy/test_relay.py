"""The data path of ``tlsfast proxy`` in each mode, and its failure cases."""

import re
import socket
import ssl

import pytest

import tlsfast
from tests.proxy.helpers import TIMEOUT, clientContext, connect, echo, echoRoundTrip, readToEnd, serverContext

MiB = 1024 * 1024


def test_terminate_echo(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "terminate", "--cert", pems.cert, "--key", pems.key)
    # The same environment (TLSFAST_DISABLE) decides for the proxy process.
    assert f"accelerated={tlsfast.ACCELERATED}" in proxy.waitFor(r"event=listening")[0]
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 4 * MiB)
        assert received == sent
        sock.unwrap()  # our close_notify; the proxy closes the backend
    assert server.accepted == 1
    close = proxy.waitFor(r"event=close ")[0]
    assert f"bytes_from_client={4 * MiB}" in close and f"bytes_from_backend={4 * MiB}" in close
    conn = re.search(r"conn=(\d+)", close).group(1)
    assert proxy.waitFor(rf"event=handshake .*conn={conn}\b")


def test_originate_echo(pems, start_proxy, backend):
    server = backend(echo, serverContext(pems.backendCert, pems.backendKey))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "originate", "--backend-ca", pems.ca, "--backend-name", "backend.example")
    with connect(proxy.port) as sock:
        sent, received = echoRoundTrip(sock, 3 * MiB)
        assert received == sent
    assert server.accepted == 1
    assert proxy.waitFor(r"event=backend_ready .*tls_version=TLSv1\.3")


def test_originate_wrong_backend_name(pems, start_proxy, backend):
    server = backend(echo, serverContext(pems.backendCert, pems.backendKey))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "originate", "--backend-ca", pems.ca, "--backend-name", "wrong.example")
    with connect(proxy.port) as sock:
        sock.sendall(b"must not reach the backend\n")
        assert readToEnd(sock) == b""  # a FIN, not a reset (that would raise)
    failed = proxy.waitFor(r"event=backend_failed")
    assert len(failed) == 1
    assert "wrong.example" in failed[0] or "verif" in failed[0].lower() or "certificate" in failed[0].lower()
    assert not proxy.waitFor(r"event=backend_ready", 0)


def test_reencrypt_with_alpn(pems, start_proxy, backend):
    server = backend(echo, serverContext(pems.backendCert, pems.backendKey, alpn=["h2", "http/1.1"]))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "reencrypt", "--cert", pems.cert, "--key", pems.key,
                        "--backend-ca", pems.ca, "--backend-name", "backend.example",
                        "--alpn", "h2,http/1.1")
    with connect(proxy.port, clientContext(pems.ca, alpn=["http/1.1"])) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        sent, received = echoRoundTrip(sock, 2 * MiB)
        assert received == sent
        sock.unwrap()
    # The backend was offered what the client chose, not the whole list.
    assert server.alpn == ["http/1.1"]


def test_backend_down_clean_close(pems, start_proxy):
    # Bound but not listening: connecting to it is refused.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{port}",
                            "--cert", pems.cert, "--key", pems.key)
        with connect(proxy.port, clientContext(pems.ca)) as sock:
            # suppress_ragged_eofs=False: without close_notify this raises.
            assert readToEnd(sock) == b""
        failed = proxy.waitFor(r"event=backend_failed")
        assert len(failed) == 1 and re.search(r"conn=\d+", failed[0]) and "refused" in failed[0].lower()
        # The client's own close is seen at once (not at the idle timeout): the connection is gone.
        assert proxy.waitFor(r"event=close .*by=backend_failed")


def test_garbage_instead_of_client_hello(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    good = connect(proxy.port, clientContext(pems.ca))  # open before, used after
    with connect(proxy.port) as garbage:
        garbage.sendall(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" * 4)
        try:
            rest = garbage.recv(65536)
            while rest and not rest.startswith(b"HTTP"):  # at most an alert, then the close
                rest = garbage.recv(65536)
            assert not rest
        except ConnectionResetError:
            pass
    proxy.waitFor(r"event=close .*error=")
    with good:
        sent, received = echoRoundTrip(good, 64 * 1024)
        assert received == sent
    with connect(proxy.port, clientContext(pems.ca)) as after:
        sent, received = echoRoundTrip(after, 64 * 1024)
        assert received == sent
    assert server.accepted == 2  # the garbage connection never reached the backend


def test_handshake_failure_is_logged_not_relayed(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    untrusting = ssl.create_default_context()  # platform CAs: our test CA is not among them
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(proxy.port, untrusting)
    proxy.waitFor(r"event=close ")
    assert server.accepted == 0


def test_backend_down_silent_client_is_cut(pems, start_proxy):
    """A client that neither answers the proxy's close_notify nor closes is cut after the handshake timeout."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{reserved.getsockname()[1]}",
                            "--cert", pems.cert, "--key", pems.key, "--handshake-timeout", "1")
        with connect(proxy.port, clientContext(pems.ca)) as sock:
            assert readToEnd(sock) == b""  # the proxy's close_notify; we stay silent and open
            assert proxy.waitFor(r"event=close .*by=backend_failed")
            raw = socket.socket(fileno=sock.detach())  # the TCP connection under the TLS
            raw.settimeout(TIMEOUT)
            try:
                assert raw.recv(1) == b""  # closed by the proxy
            except ConnectionResetError:
                pass  # aborted: also closed
            raw.close()


@pytest.mark.skipif(not tlsfast.ACCELERATED, reason="the compiled relay needs the engine")
@pytest.mark.parametrize("mode", ["terminate", "originate", "reencrypt"])
def test_plaintext_is_relayed_in_compiled_code(pems, start_proxy, backend, mode):
    """
    Once the backend is ready, both directions move through the compiled
    relay (the backend_ready line says which relay runs), every byte is
    counted, and a 2 MiB echo is intact.
    """
    tlsBack = mode != "terminate"
    server = backend(echo, serverContext(pems.backendCert, pems.backendKey) if tlsBack else None)
    args = ["--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}", "--mode", mode]
    if mode != "originate":
        args += ["--cert", pems.cert, "--key", pems.key]
    if tlsBack:
        args += ["--backend-ca", pems.ca, "--backend-name", "backend.example"]
    proxy = start_proxy(*args)
    with connect(proxy.port, clientContext(pems.ca) if mode != "originate" else None) as sock:
        sent, received = echoRoundTrip(sock, 2 * MiB)
        assert received == sent
    assert proxy.waitFor(r"event=backend_ready .*relay=compiled")
    close = proxy.waitFor(r"event=close ")[0]
    assert f"bytes_from_client={2 * MiB}" in close and f"bytes_from_backend={2 * MiB}" in close, close
