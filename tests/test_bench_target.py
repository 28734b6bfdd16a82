"""
``tlsfast bench --target HOST:PORT``: an outside TLS server measured with the
same load generator.  The outside server here is a small asyncio + stdlib
ssl echo server in its own process, on 127.0.0.1, TLS 1.3 only.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.test_bench_cli import one_line_error, tlsfast_bench
from tlsfast._cliutil import UsageError
from tlsfast.bench.cli import parse_target

ECHO_SERVER = """
import asyncio, ssl, sys
from tlsfast.bench.certs import write_pki
paths = write_pki(sys.argv[1])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(paths["server.pem"], paths["server.key"])
context.minimum_version = ssl.TLSVersion.TLSv1_3
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""

QUICK = ["--reps", "1", "--seconds", "0.1", "--quiet"]


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("target")
    process = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(directory)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        yield port, str(directory / "ca.pem")
    finally:
        process.kill()
        process.wait()


def test_parse_target():
    assert parse_target("127.0.0.1:443") == ("127.0.0.1", 443)
    assert parse_target("[::1]:8443") == ("::1", 8443)
    assert parse_target("example.com:1") == ("example.com", 1)
    for bad in ("example.com", "example.com:0", ":443", "host:70000", "host:https"):
        with pytest.raises(UsageError, match="expected HOST:PORT"):
            parse_target(bad)


def test_target_is_measured_with_the_same_clients(echo_server, tmp_path):
    port, ca = echo_server
    out = tmp_path / "out.json"
    done = tlsfast_bench("--target", f"127.0.0.1:{port}", "--target-ca", ca, "--target-name", "example.com",
                         *QUICK, "--json", str(out))
    assert done.returncode == 0, done.stderr
    results = {r["key"]: r for r in json.loads(out.read_text())["results"]}
    # the target alone, in the scenarios a target runs in; no resumed handshakes for it
    assert sorted(results) == ["echo", "handshake"]
    for key, result in results.items():
        assert list(result["summary"]) == ["target"], key
        row = result["summary"]["target"]
        assert row["rate_median"] > 0 and math.isnan(row["cpu_us_per_op_median"]), key  # not our CPU to read
        assert 0 < row["latency_p50_us"] <= row["latency_p99_us"], key
        assert result["negotiated"]["target"]["version"] == "TLSv1.3", key
        assert result["negotiated"]["target"]["cipher"] == "TLS_AES_128_GCM_SHA256", key
        assert result["params"]["target"] == f"127.0.0.1:{port}"
    assert f"target 127.0.0.1:{port}" in done.stdout


def test_target_next_to_our_stacks(echo_server, tmp_path):
    port, _ = echo_server
    out = tmp_path / "out.json"
    done = tlsfast_bench("echo", "--target", f"127.0.0.1:{port}", "--stacks", "twisted", *QUICK, "--json", str(out))
    assert done.returncode == 0, done.stderr
    [echo] = json.loads(out.read_text())["results"]
    assert list(echo["summary"]) == ["twisted", "target"]
    assert echo["summary"]["target"]["rate_vs_twisted"] > 0


def test_target_that_refuses_the_parameters(echo_server):
    port, _ = echo_server
    done = tlsfast_bench("handshake", "--target", f"127.0.0.1:{port}", "--tls-version", "1.2", *QUICK)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("tlsfast bench: error: handshake client against target failed: ")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_handshakes_with_openssl_s_server(echo_server, tmp_path):
    """A server that does not echo: handshakes only (connect, handshake, close)."""
    _, ca = echo_server
    certs = os.path.dirname(ca)  # the echo server's PKI: example.com, signed by ca.pem
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-quiet",
                               "-cert", os.path.join(certs, "server.pem"), "-key", os.path.join(certs, "server.key")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        out = tmp_path / "out.json"
        done = tlsfast_bench("handshake", "--target", f"127.0.0.1:{port}", "--target-ca", ca,
                             "--target-name", "example.com", *QUICK,
                             "--json", str(out))
    finally:
        server.kill()
        server.wait()
    assert done.returncode == 0, done.stderr
    [handshake] = json.loads(out.read_text())["results"]
    assert handshake["summary"]["target"]["rate_median"] > 0
    assert handshake["negotiated"]["target"]["version"] == "TLSv1.3"


def test_target_errors():
    one_line_error(tlsfast_bench("--target", "localhost"), 2, "expected HOST:PORT")
    one_line_error(tlsfast_bench("bulk", "--target", "127.0.0.1:9"), 2, "a target runs in echo, handshake")
    one_line_error(tlsfast_bench("echo", "--target", "127.0.0.1:9", "--target-ca", "/nonexistent.pem"), 2,
                   "--target-ca /nonexistent.pem: no such file")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    one_line_error(tlsfast_bench("echo", "--target", f"127.0.0.1:{closed}", *QUICK), 3,
                   f"cannot connect to the target 127.0.0.1:{closed}")
