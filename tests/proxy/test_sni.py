"""SNI routing: the backend is chosen by the name the client asked for."""

import pytest

from tests import pki
from tests.proxy.helpers import clientContext, connect, readToEnd, runProxy

def tagged(tag):
    def handler(sock):
        sock.sendall(tag + sock.recv(100))
    return handler

def test_routes_by_server_name(pems, start_proxy, backend, tmp_path):
    identity = pki.leaf("ecdsa", names=("a.example", "x.b.example", "other.example"))
    cert, key = tmp_path / "multi.crt", tmp_path / "multi.key"
    cert.write_bytes(identity.cert_pem)
    key.write_bytes(identity.key_pem)
    default, a, b = backend(tagged(b"default:")), backend(tagged(b"a:")), backend(tagged(b"b:"))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{default.port}",
                        "--cert", cert, "--key", key,
                        "--route", f"a.example=127.0.0.1:{a.port}", "--route", f"*.b.example=127.0.0.1:{b.port}")
    for name, expected in (("a.example", b"a:"), ("x.b.example", b"b:"), ("other.example", b"default:")):
        with connect(proxy.port, clientContext(pems.ca), name=name) as sock:
            sock.sendall(b"hi")
            assert readToEnd(sock) == expected + b"hi"
    assert (default.accepted, a.accepted, b.accepted) == (1, 1, 1)
    assert proxy.waitFor(rf"event=backend_ready .*backend=127.0.0.1:{b.port}")

@pytest.mark.parametrize("route, words", [("a.example", "NAME=HOST:PORT"), ("a.*.example=127.0.0.1:1", "'*.'")])
def test_bad_route(pems, route, words):
    completed = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                          "--cert", pems.cert, "--key", pems.key, "--route", route])
    assert completed.returncode == 2
    assert words in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
