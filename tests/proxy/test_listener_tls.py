"""
Per-listener TLS towards clients: client-certificate authentication,
certificates chosen by SNI, ALPN routing, version policy.
"""

import ssl

import pytest

from tests import pki
from tests.proxy.helpers import clientContext, connect, readToEnd, runProxy


def tagged(tag):
    def handler(sock):
        sock.sendall(tag + sock.recv(100))
    return handler


def clientWithCertificate(pems, identity, tmp_path, alpn=None):
    files = pki.write_pems(str(tmp_path), {"client-cert": identity.cert_pem, "client-key": identity.key_pem})
    context = clientContext(pems.ca, alpn)
    context.load_cert_chain(files["client-cert"], files["client-key"])
    return context


def test_client_certificate_required(pems, start_proxy, backend, tmp_path):
    server = backend(tagged(b"ok:"))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--client-ca", pems.ca)
    # A certificate from the configured CA: in, and its subject is logged.
    alice = pki.leaf("ecdsa", names=("alice",), client=True)
    with connect(proxy.port, clientWithCertificate(pems, alice, tmp_path)) as sock:
        sock.sendall(b"hi")
        assert readToEnd(sock) == b"ok:hi"
    assert proxy.waitFor(r"event=handshake .*client_cert=\"CN=alice\"")
    # No certificate: refused during the handshake (TLS 1.3: at the first read).
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with connect(proxy.port, clientContext(pems.ca)) as sock:
            sock.sendall(b"hi")
            readToEnd(sock)
    # A certificate from another CA: refused too.
    mallory = pki.leaf("ecdsa", names=("mallory",), ca_name="some other CA", client=True)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with connect(proxy.port, clientWithCertificate(pems, mallory, tmp_path)) as sock:
            sock.sendall(b"hi")
            readToEnd(sock)
    assert proxy.waitFor(r"event=close .*by=handshake_failed", 2)
    assert server.accepted == 1  # refused clients never cost a backend connection


def test_client_certificate_optional(pems, start_proxy, backend, tmp_path):
    server = backend(tagged(b"ok:"))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--client-ca", pems.ca, "--client-cert", "optional")
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sock.sendall(b"anon")
        assert readToEnd(sock) == b"ok:anon"
    bob = pki.leaf("ecdsa", names=("bob",), client=True)
    with connect(proxy.port, clientWithCertificate(pems, bob, tmp_path)) as sock:
        sock.sendall(b"bob")
        assert readToEnd(sock) == b"ok:bob"
    lines = proxy.waitFor(r"event=handshake ", 2)
    assert sum('client_cert="CN=bob"' in line for line in lines) == 1
    assert sum("client_cert=" in line for line in lines) == 1


def test_certificate_chosen_by_server_name(pems, start_proxy, backend, tmp_path):
    other = pki.leaf("ecdsa", names=("api.example", "*.api.example"))
    files = pki.write_pems(str(tmp_path), {"api-cert": other.cert_pem, "api-key": other.key_pem})
    server = backend(tagged(b"ok:"))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key,
                        "--sni-cert", f"api.example={files['api-cert']},{files['api-key']}",
                        "--sni-cert", f"*.api.example={files['api-cert']},{files['api-key']}")
    # Each client verifies the hostname it asked for: only the right certificate passes.
    for name in ("api.example", "v2.api.example", "example.com"):
        with connect(proxy.port, clientContext(pems.ca), name=name) as sock:
            sock.sendall(name.encode())
            assert readToEnd(sock) == b"ok:" + name.encode()


def test_alpn_routing(pems, start_proxy, backend):
    default, h2 = backend(tagged(b"default:")), backend(tagged(b"h2:"))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{default.port}",
                        "--cert", pems.cert, "--key", pems.key, "--alpn", "h2,http/1.1",
                        "--alpn-route", f"h2=127.0.0.1:{h2.port}")
    for offered, expected in ((["h2", "http/1.1"], b"h2:"), (["http/1.1"], b"default:")):
        with connect(proxy.port, clientContext(pems.ca, alpn=offered)) as sock:
            sock.sendall(b"x")
            assert readToEnd(sock) == expected + b"x"
    assert (default.accepted, h2.accepted) == (1, 1)
    assert proxy.waitFor(rf"event=backend_ready .*backend=127.0.0.1:{h2.port}")
    assert proxy.waitFor(r"event=handshake .*alpn=h2\b")


def test_minimum_version(pems, start_proxy, backend):
    server = backend(tagged(b"ok:"))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--min-version", "1.3")
    old = clientContext(pems.ca)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        connect(proxy.port, old)
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        assert sock.version() == "TLSv1.3"
    assert server.accepted <= 1


@pytest.mark.parametrize("extra, words", [
    (["--alpn", "http/1.1", "--alpn-route", "h2=127.0.0.1:1"], "does not offer"),
    (["--client-cert", "required"], "needs --client-ca"),
    (["--client-ca", "/nonexistent/ca.pem"], "does not exist"),
    (["--sni-cert", "a.example=/nonexistent.pem"], "does not exist"),
    (["--min-version", "1.1"], "unknown TLS version"),
    (["--ciphers", "NOT-A-CIPHER"], "cipher"),
])
def test_tls_settings_errors(pems, extra, words):
    completed = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                          "--cert", pems.cert, "--key", pems.key, *extra])
    assert completed.returncode == 2, completed.stderr
    assert words in completed.stderr and len(completed.stderr.strip().splitlines()) == 1, completed.stderr


def test_client_tls_settings_need_tls_from_clients(pems):
    completed = runProxy(["--mode", "originate", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                          "--backend-name", "backend.example", "--client-ca", pems.ca])
    assert completed.returncode == 2
    assert "client-ca needs TLS from clients" in completed.stderr
