"""
Interoperability through the proxy with independent clients: curl over
HTTP/1.1 (terminate) and HTTP/2 (reencrypt, ALPN h2 passed on) to a
twisted.web server running in its own process on stock Twisted, and
`openssl s_client` to a line-echo backend.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.proxy.helpers import TIMEOUT

MiB = 1024 * 1024

WEB_SERVER = r'''
import sys

from twisted.internet import reactor, ssl
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data


class Protocol(Resource):
    """The HTTP version the request came in with (b"HTTP/2" over h2)."""

    isLeaf = True

    def render_GET(self, request):
        return request.clientproto


docroot, mode = sys.argv[1], sys.argv[2]
root = Resource()
for name in ("small", "big"):
    with open(f"{docroot}/{name}", "rb") as f:
        root.putChild(name.encode(), Data(f.read(), "application/octet-stream"))
root.putChild(b"protocol", Protocol())
site = Site(root)
if mode == "tls":
    with open(sys.argv[3]) as cert, open(sys.argv[4]) as key:
        identity = ssl.PrivateCertificate.loadPEM(cert.read() + key.read())
    options = ssl.CertificateOptions(privateKey=identity.privateKey.original,
                                     certificate=identity.original,
                                     acceptableProtocols=[b"h2", b"http/1.1"])
    port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
else:
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
'''


def requireTool(name):
    if shutil.which(name) is None:
        pytest.skip(f"{name} not installed")


@pytest.fixture
def web(tmp_path):
    """
    Start twisted.web (plain, or TLS with h2 and http/1.1 over ALPN) in a
    subprocess serving /small, /big (8 MiB) and /protocol; returns
    C{start(mode, cert, key) -> (port, bodies)}.
    """
    processes = []
    docroot = tmp_path / "docroot"
    docroot.mkdir()
    bodies = {"small": b"hello from twisted.web\n", "big": os.urandom(8 * MiB)}
    for name, body in bodies.items():
        (docroot / name).write_bytes(body)
    script = tmp_path / "web.py"
    script.write_text(WEB_SERVER)

    def start(mode="plain", cert=None, key=None):
        argv = [sys.executable, str(script), str(docroot), mode]
        if mode == "tls":
            argv += [cert, key]
        # Stock Twisted in the backend: an independent peer, not tlsfast.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TLSFAST")}
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env)
        processes.append(process)
        line = process.stdout.readline()
        if not line.strip().isdigit():
            process.kill()
            raise AssertionError(f"web server did not start: {line!r} {process.stderr.read()}")
        return int(line), bodies

    yield start
    for process in processes:
        process.kill()
        process.wait(TIMEOUT)


def curl(port, pems, tmp_path, urls, *extra):
    """curl URLs (example.com:PORT resolved to 127.0.0.1); per transfer the -w line and the body."""
    requireTool("curl")
    argv = ["curl", "-sS", "--max-time", str(TIMEOUT), "--cacert", pems.ca,
            "--resolve", f"example.com:{port}:127.0.0.1",
            "-w", "%{http_version} %{http_code} %{num_connects}\\n", *extra]
    outputs = []
    for index, path in enumerate(urls):
        output = tmp_path / f"curl-{index}.out"
        outputs.append(output)
        argv += ["-o", str(output), f"https://example.com:{port}/{path}"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=2 * TIMEOUT, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(urls), result.stdout
    return [(line.split(), output.read_bytes()) for line, output in zip(lines, outputs)]


def test_curl_http11_terminate(pems, start_proxy, web, tmp_path):
    """
    curl --http1.1 through the proxy (terminate) to plain twisted.web: both
    bodies (one 8 MiB) intact, on one kept-alive connection.
    """
    port, bodies = web("plain")
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{port}",
                        "--cert", pems.cert, "--key", pems.key)
    transfers = curl(proxy.port, pems, tmp_path, ["small", "big", "protocol"], "--http1.1")
    assert [fields for fields, _ in transfers] == [["1.1", "200", "1"], ["1.1", "200", "0"], ["1.1", "200", "0"]]
    assert transfers[0][1] == bodies["small"]
    assert hashlib.sha256(transfers[1][1]).hexdigest() == hashlib.sha256(bodies["big"]).hexdigest()
    assert transfers[2][1] == b"HTTP/1.1"
    assert len(proxy.waitFor(r"event=accept", 0)) == 1
    close = proxy.waitFor(r"event=close ")[0]
    assert "by=client" in close
    assert int(re.search(r"bytes_from_backend=(\d+)", close).group(1)) > len(bodies["big"])


def test_curl_http2_reencrypt(pems, start_proxy, web, tmp_path):
    """
    curl --http2 through the proxy (reencrypt, --alpn h2,http/1.1) to
    twisted.web over TLS with h2: curl speaks HTTP/2, the proxy's handshake
    with curl and with the backend both chose h2, the backend saw an HTTP/2
    request, and the bodies are intact.
    """
    port, bodies = web("tls", pems.backendCert, pems.backendKey)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{port}",
                        "--mode", "reencrypt", "--cert", pems.cert, "--key", pems.key,
                        "--backend-ca", pems.ca, "--backend-name", "backend.example",
                        "--alpn", "h2,http/1.1")
    transfers = curl(proxy.port, pems, tmp_path, ["small", "big", "protocol"], "--http2")
    assert [fields for fields, _ in transfers] == [["2", "200", "1"], ["2", "200", "0"], ["2", "200", "0"]]
    assert transfers[0][1] == bodies["small"]
    assert hashlib.sha256(transfers[1][1]).hexdigest() == hashlib.sha256(bodies["big"]).hexdigest()
    assert transfers[2][1] == b"HTTP/2"
    [handshake] = proxy.waitFor(r"event=handshake ")
    assert "alpn=h2" in handshake.split() and "sni=example.com" in handshake
    [ready] = proxy.waitFor(r"event=backend_ready ")
    assert "alpn=h2" in ready.split()
    assert proxy.waitFor(r"event=close .*by=client")


def lineEcho(sock):
    line = b""
    while not line.endswith(b"\n"):
        data = sock.recv(4096)
        if not data:
            return
        line += data
    sock.sendall(b"echo: " + line)


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_openssl_s_client(pems, start_proxy, backend, version):
    """
    openssl s_client through the proxy (terminate) verifies example.com
    against the CA (return code 0), gets its line echoed by the backend, and
    sees the proxy's clean close when the backend closes.
    """
    requireTool("openssl")
    server = backend(lineEcho)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{proxy.port}", "-servername", "example.com",
         "-CAfile", pems.ca, "-verify_return_error", "-verify_hostname", "example.com", "-ign_eof", version],
        input=b"hello from openssl\n", capture_output=True, timeout=TIMEOUT, check=False)
    out = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, out + result.stderr.decode("utf-8", "replace")
    assert "Verify return code: 0 (ok)" in out
    assert f"New, TLSv1.{version[-1]}, Cipher is" in out
    assert "echo: hello from openssl\n" in out
    assert server.accepted == 1
    close = proxy.waitFor(r"event=close ")[0]
    assert "by=backend" in close and "bytes_from_client=19 bytes_from_backend=25" in close, close
    assert proxy.waitFor(rf"event=handshake .*tls_version=TLSv1\.{version[-1]}")
