"""
The runnable examples in docs/examples, run as subprocesses on 127.0.0.1
with test certificates: each server/client pair, and the certificate checker
against a local TLS server.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import tlsfast
from tests import pki
from tests.twisted.processhelpers import TIMEOUT, Background

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "examples")

pytestmark = pytest.mark.skipif(not tlsfast.ACCELERATED, reason="tlsfast engine unavailable")


@pytest.fixture
def pems(tmp_path):
    """server.pem / client.pem (certificate + key) and ca.pem, as paths."""
    server = pki.leaf("ecdsa", names=("example.com",))
    client = pki.leaf("ecdsa", names=("client.example.com",), client=True)
    paths = {}
    for name, content in (
        ("server", server.cert_pem + server.key_pem),
        ("client", client.cert_pem + client.key_pem),
        ("ca", pki.certificate_authority().cert_pem),
    ):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(content)
        paths[name] = str(path)
    return paths


def example(name):
    return [sys.executable, "-u", os.path.join(EXAMPLES, name)]


@pytest.fixture
def serve(request):
    """
    Start a server example on a free port of 127.0.0.1; returns
    (Background, port).  Killed at teardown.
    """

    def start(name, *args):
        server = Background(request.addfinalizer, example(name) + ["--port", "0", *args])
        match = server.waitForOutputBlocking(r"listening on 127\.0\.0\.1:(\d+)")
        return server, match.group(1)

    return start


def client(name, *args):
    return subprocess.run(
        example(name) + list(args), capture_output=True, text=True, timeout=TIMEOUT
    )


def lines(text):
    return text.strip().splitlines()


def test_echo(pems, serve):
    server, port = serve("echoserv_ssl.py", "--cert", pems["server"])
    result = client("echoclient_ssl.py", "--ca", pems["ca"], "--port", port)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [
        "receive: Hello, world!",
        "receive: What a fine day it is.",
        "receive: Bye-bye!",
    ]
    server.waitForOutputBlocking(r"connection from 127\.0\.0\.1 \(TLS by tlsfast\)")


def test_startTLS(pems, serve):
    server, port = serve("starttls_server.py", "--cert", pems["server"])
    result = client("starttls_client.py", "--ca", pems["ca"], "--port", port)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [
        "received (plain): echo: plain text",
        "received (plain): READY",
        "received (TLS): echo: secure text",
        "TLS by tlsfast",
    ]
    server.waitForOutputBlocking(r"received \(TLS\): secure text")
    events = [line for line in lines(server.output()) if line.startswith(("received", "--"))]
    assert events == [
        "received (plain): plain text",
        "received (plain): STARTTLS",
        "-- Switching to TLS",
        "received (TLS): secure text",
    ]


def test_clientAuth(pems, serve):
    server, port = serve("ssl_clientauth_server.py", "--cert", pems["server"], "--ca", pems["ca"])
    result = client(
        "ssl_clientauth_client.py", "--cert", pems["client"], "--ca", pems["ca"], "--port", port
    )
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == ["receive: Hello from a client with a certificate"]
    server.waitForOutputBlocking(r"client certificate: client\.example\.com")


def test_clientAuthWithoutCertificate(pems, serve):
    server, port = serve("ssl_clientauth_server.py", "--cert", pems["server"], "--ca", pems["ca"])
    result = client("ssl_clientauth_client.py", "--ca", pems["ca"], "--port", port)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "connection failed" in result.stdout
    assert "receive:" not in result.stdout
    server.waitForOutputBlocking(r"connection closed: .*certificate")
    assert "client certificate:" not in server.output()


@pytest.mark.parametrize(
    "offered, chosen", [("h2,http/1.1", "h2"), ("http/1.1", "http/1.1"), ("spdy/3,h2", "h2")]
)
def test_alpn(pems, serve, offered, chosen):
    server, port = serve("tls_alpn_server.py", "--cert", pems["server"])
    result = client(
        "tls_alpn_client.py", "--ca", pems["ca"], "--port", port, "--protocols", offered
    )
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [
        f"Next protocol is: {chosen}",
        f"receive: Negotiated protocol: {chosen}",
    ]
    server.waitForOutputBlocking(rf"negotiated protocol: {chosen}\n")


def test_alpnNoOverlap(pems, serve):
    server, port = serve("tls_alpn_server.py", "--cert", pems["server"])
    result = client("tls_alpn_client.py", "--ca", pems["ca"], "--port", port, "--protocols", "foo")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "connection failed" in result.stdout
    assert "Next protocol" not in result.stdout
    server.waitForOutputBlocking(r"connection closed: ")
    assert "negotiated protocol:" not in server.output()


def checkCertificate(host, port, *args):
    return client(
        "check_server_certificate.py", host, port, "--connect-address", "127.0.0.1", *args
    )


def test_checkServerCertificate(pems, serve):
    server, port = serve("echoserv_ssl.py", "--cert", pems["server"])
    result = checkCertificate("example.com", port, "--ca", pems["ca"])
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert out[:3] == ["verified: yes", "subject: CN=example.com", "issuer: CN=tlsfast test CA"]
    assert out[3].startswith("not after: ")
    assert out[4:6] == ["protocol: TLSv1.3", "cipher: TLS_AES_256_GCM_SHA384"]


@pytest.mark.parametrize(
    "host, trustTestCA, reason",
    [
        # the test CA is not among the system's trust roots
        ("example.com", False, "certificate verify failed"),
        # trusted, but issued for another name
        ("other.example.org", True, "other.example.org"),
    ],
    ids=["untrusted", "wrongName"],
)
def test_checkServerCertificateFails(pems, serve, host, trustTestCA, reason):
    server, port = serve("echoserv_ssl.py", "--cert", pems["server"])
    result = checkCertificate(host, port, *(["--ca", pems["ca"]] if trustTestCA else []))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verification failed" in result.stdout
    assert reason in result.stdout
    assert "verified: yes" not in result.stdout
