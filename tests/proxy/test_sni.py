"""SNI routing: the backend is chosen by the name the client asked for."""

import pytest

from tests import pki
from tests.proxy.helpers import clientContext, connect, readToEnd, runProxy
from tests.proxy.hostile import assertNoTraceback, bounded, close, readAll, tlsClient


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


# -- names compared as DNS compares them: case, trailing dot, IDNA (finding 9) --

def test_routes_normalise_names(pems, start_proxy, backend):
    idn, upper, wild = backend(tagged(b"idn:")), backend(tagged(b"upper:")), backend(tagged(b"wild:"))
    default = backend(tagged(b"default:"))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{default.port}",
                        "--cert", pems.cert, "--key", pems.key,
                        "--route", f"Bücher.Example=127.0.0.1:{idn.port}",
                        "--route", f"A.EXAMPLE.=127.0.0.1:{upper.port}",
                        "--route", f"*.B.example=127.0.0.1:{wild.port}")
    for sent, expected in ((b"xn--bcher-kva.example", b"idn:"), ("bücher.example".encode(), b"idn:"),
                           (b"XN--BCHER-KVA.EXAMPLE.", b"idn:"), (b"a.example", b"upper:"),
                           (b"a.example.", b"upper:"), (b"X.b.EXAMPLE", b"wild:"), (b"a..example", b"default:"),
                           (b"a\xff.example", b"default:")):
        connection = tlsClient(proxy.port, sent)
        bounded(connection.sendall, b"hi")
        assert readAll(connection) == expected + b"hi", sent
    assertNoTraceback(proxy.lines)


def test_sni_certificate_for_an_international_name(pems, start_proxy, backend, tmp_path):
    identity = pki.leaf("ecdsa", names=("xn--bcher-kva.example",))
    files = pki.write_pems(str(tmp_path), {"idn.crt": identity.cert_pem, "idn.key": identity.key_pem})
    server = backend(tagged(b""))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key,
                        "--sni-cert", f"Bücher.example.={files['idn.crt']},{files['idn.key']}")
    for sent, subject in ((b"XN--BCHER-KVA.example.", "CN=xn--bcher-kva.example"),
                          ("bücher.example".encode(), "CN=xn--bcher-kva.example"),
                          (b"example.com", "CN=example.com")):
        connection = tlsClient(proxy.port, sent)
        peer = connection.get_peer_certificate().to_cryptography()
        assert peer.subject.rfc4514_string() == subject, sent
        close(connection)


@pytest.mark.parametrize("flag, value, words", [
    ("--route", "a..b=127.0.0.1:1", "'a..b'"),
    ("--route", "x" * 64 + ".example=127.0.0.1:1", "not a host name"),
    ("--route", "bad name=127.0.0.1:1", "'bad name'"),
    ("--sni-cert", "a..b=CERT", "sni-cert: server name 'a..b'"),
])
def test_bad_names_are_configuration_errors(pems, flag, value, words):
    completed = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                          "--cert", pems.cert, "--key", pems.key, flag, value.replace("CERT", pems.cert)])
    assert completed.returncode == 2
    assert words in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
