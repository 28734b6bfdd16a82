"""
Mutual TLS towards the backend: --backend-cert / --backend-key present a
client certificate to a backend that requires one.
"""

import ssl

import pytest

from tests import pki
from tests.proxy.helpers import clientContext, connect, echoRoundTrip, readToEnd, runProxy, serverContext


@pytest.fixture
def proxyIdentity(tmp_path):
    identity = pki.leaf("ecdsa", names=("proxy.example",), client=True)
    directory = tmp_path / "proxy-identity"  # (not beside the pems fixture's files of the same names)
    directory.mkdir()
    return pki.write_pems(str(directory), {"cert": identity.cert_pem, "key": identity.key_pem})


def requiringBackend(pems, backend, subjects):
    context = serverContext(pems.backendCert, pems.backendKey)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(pems.ca)

    def handler(sock):
        subjects.append(dict(field[0] for field in sock.getpeercert()["subject"]))
        while data := sock.recv(65536):
            sock.sendall(data)

    return backend(handler, context)


def test_reencrypt_presents_the_client_certificate(pems, start_proxy, backend, proxyIdentity):
    subjects = []
    server = requiringBackend(pems, backend, subjects)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "reencrypt", "--cert", pems.cert, "--key", pems.key,
                        "--backend-ca", pems.ca, "--backend-name", "backend.example",
                        "--backend-cert", proxyIdentity["cert"], "--backend-key", proxyIdentity["key"])
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 512 * 1024)
        assert received == sent
        sock.unwrap()
    assert subjects == [{"commonName": "proxy.example"}]
    assert server.errors == []


def test_without_it_the_backend_refuses_and_the_client_gets_a_clean_close(pems, start_proxy, backend):
    server = requiringBackend(pems, backend, [])
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--mode", "reencrypt", "--cert", pems.cert, "--key", pems.key,
                        "--backend-ca", pems.ca, "--backend-name", "backend.example")
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        assert readToEnd(sock) == b""  # close_notify, not a reset
    # TLS 1.3: the client's certificate goes after the server's Finished, so
    # the refusal (an alert) comes once the backend looks ready.
    [line] = proxy.waitFor(r"event=close ")
    assert "by=backend" in line and "certificate required" in line


@pytest.mark.parametrize("extra, message", [
    (["--backend-key", "KEY"], "backend-key needs backend-cert"),
    (["--backend-cert", "/nonexistent.pem"], "backend-cert file '/nonexistent.pem' does not exist"),
    (["--backend-cert", "CERT", "--backend-key", "OTHERKEY"], "does not match"),
])
def test_configuration_errors(pems, proxyIdentity, extra, message):
    extra = [{"KEY": proxyIdentity["key"], "CERT": proxyIdentity["cert"], "OTHERKEY": pems.otherKey}.get(a, a)
             for a in extra]
    result = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--mode", "originate",
                       "--backend-name", "backend.example", *extra])
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_not_without_tls_to_the_backend(pems, proxyIdentity):
    result = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--cert", pems.cert,
                       "--key", pems.key, "--backend-cert", proxyIdentity["cert"]])
    assert result.returncode == 2
    assert "no TLS towards the backend" in result.stderr
