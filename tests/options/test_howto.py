"""
docs/howto.md: every Python block in it is a file of docs/howto_examples
(checked verbatim), and every example runs here against 127.0.0.1 with test
certificates.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import tlsfast
from tests import pki
from tests.twisted.processhelpers import TIMEOUT, Background

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "docs")
EXAMPLES = os.path.join(DOCS, "howto_examples")

pytestmark = pytest.mark.skipif(not tlsfast.ACCELERATED, reason="tlsfast engine unavailable")


def test_blocksAreExamples():
    """Each ```python block of howto.md is an example file, word for word."""
    with open(os.path.join(DOCS, "howto.md")) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    shown = set()
    for block in blocks:
        first = block.splitlines()[0]
        match = re.fullmatch(r"# howto_examples/(\w+\.py)", first)
        assert match, f"block does not name its example file: {first!r}"
        with open(os.path.join(EXAMPLES, match.group(1))) as f:
            assert f.read() == block, f"howto.md differs from {match.group(1)}"
        shown.add(match.group(1))
    assert shown == {n for n in os.listdir(EXAMPLES) if n.endswith(".py")}


@pytest.fixture
def pems(tmp_path, monkeypatch):
    """Certificates in the working directory under the examples' default names."""
    files = {
        "ca.pem": pki.certificate_authority().cert_pem,
    }
    for prefix, identity in (
        ("server", pki.leaf("ecdsa", names=("example.com",))),
        ("client", pki.leaf("ecdsa", names=("client.example.com",), client=True)),
        ("other", pki.leaf("rsa", names=("*.other.test",))),
    ):
        files[f"{prefix}.crt"] = identity.cert_pem
        files[f"{prefix}.key"] = identity.key_pem
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    return tmp_path


def command(name, *args):
    return [sys.executable, "-u", os.path.join(EXAMPLES, name), *args]


@pytest.fixture
def serve(request, pems):
    def start(name, *args):
        server = Background(request.addfinalizer, command(name, "--port", "0", *args))
        return server.waitForOutputBlocking(r"listening on 127\.0\.0\.1:(\d+)").group(1)

    return start


def client(name, *args, env=None):
    result = subprocess.run(command(name, *args), capture_output=True, text=True,
                            timeout=TIMEOUT, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_echo(serve):
    port = serve("echo_server.py")
    out = client("echo_client.py", "--port", port)
    assert re.fullmatch(r"hello, TLS \| TLSv1\.3 TLS_\w+ X25519MLKEM768\n", out), out


def test_echoWrongName(serve):
    port = serve("echo_server.py")
    result = subprocess.run(command("echo_client.py", "--port", port, "--name", "wrong.test"),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode != 0
    assert "wrong.test" in result.stderr


def test_publicClient(pems, request):
    """
    The 'public server' example, pointed at a local HTTPS server; the
    platform trust is made to be the test CA through SSL_CERT_FILE (which
    OpenSSL, and so the platform trust, honours).
    """
    server = Background(request.addfinalizer, [
        "openssl", "s_server", "-accept", "127.0.0.1:0", "-www",
        "-cert", str(pems / "server.crt"), "-key", str(pems / "server.key")])
    port = server.waitForOutputBlocking(r"ACCEPT 127\.0\.0\.1:(\d+)").group(1)
    env = dict(os.environ, SSL_CERT_FILE=str(pems / "ca.pem"))
    out = client("public_client.py", "example.com", "--host", "127.0.0.1", "--port", port, env=env)
    assert out == "HTTP/1.0 200 ok\n"


def test_startTLS(serve):
    port = serve("starttls_server.py")
    assert client("starttls_client.py", "--port", port) == "secure: hello\n"


def test_clientAuthentication(serve):
    port = serve("clientauth_server.py")
    assert client("clientauth_client.py", "--port", port) == "hello, CN=client.example.com\n"


def test_clientAuthenticationRefused(serve, pems):
    port = serve("clientauth_server.py")
    # A client certificate from a CA the server does not trust.
    stranger = pki.leaf("ecdsa", names=("stranger",), client=True, ca_name="another CA")
    (pems / "stranger.crt").write_bytes(stranger.cert_pem)
    (pems / "stranger.key").write_bytes(stranger.key_pem)
    out = subprocess.run(command("clientauth_client.py", "--port", port,
                                 "--cert", "stranger.crt", "--key", "stranger.key"),
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert "hello" not in out.stdout


@pytest.mark.parametrize("offered, reply", [
    (["h2", "http/1.1"], "you chose h2 | negotiated: b'h2'"),
    (["http/1.1"], "you chose http/1.1 | negotiated: b'http/1.1'"),
])
def test_alpn(serve, offered, reply):
    port = serve("alpn_server.py")
    assert client("alpn_client.py", *offered, "--port", port) == reply + "\n"


def test_alpnNoOverlap(serve):
    port = serve("alpn_server.py")
    result = subprocess.run(command("alpn_client.py", "spdy/3", "--port", port),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert "you chose" not in result.stdout


def test_sansIO(pems):
    assert client("sans_io.py") == (
        "b'ping' b'pong'\n"
        "attempt 1: TLSv1.3 X25519MLKEM768 alpn=b'h2' resumed=False\n"
        "b'ping' b'pong'\n"
        "attempt 2: TLSv1.3 X25519MLKEM768 alpn=b'h2' resumed=True\n"
    )


def test_protocolOptions(pems):
    out = client("protocol_options.py").splitlines()
    assert out[0] == "built: X25519MLKEM768:X25519:P-256"
    assert out[1].startswith("refused: unknown TLS version '1.1'")
    assert out[2] == "refused: ALPN protocols must be bytes: 'h2' is str (write b'h2')"
    assert out[3].startswith("refused: no TLS handshake is possible")
