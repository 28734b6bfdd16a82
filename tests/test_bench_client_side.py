"""
``tlsfast bench handshake-client``: the client side of full and resumed
handshakes (each stack's client against one fixed stdlib-ssl server).  Only
the shape and sanity of what was measured, never how fast.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest


def _bench(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "tlsfast", "bench", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    output = tmp_path_factory.mktemp("client-side") / "run.json"
    done = _bench("handshake-client", "--stacks", "tcp,twisted,tlsfast,asyncio", "--reps", "1",
                  "--seconds", "0.3", "--json", str(output))
    assert done.returncode == 0, done.stderr[-2000:]
    return {r["key"]: r for r in json.loads(output.read_text())["results"]}


def test_fullAndResumedVariants(run):
    assert set(run) == {"handshake-client", "handshake-client-resumed"}
    assert [s["stack"] for s in run["handshake-client"]["samples"]] == ["tcp", "twisted", "tlsfast", "asyncio"]
    assert sorted(s["stack"] for s in run["handshake-client-resumed"]["samples"]) == ["tlsfast", "twisted"]
    for result in run.values():
        assert result["cpu"] == "client process"
        for sample in result["samples"]:
            assert sample["ops"] > 0
            assert 0 < sample["cpu_seconds"] < sample["seconds"] * 1.5  # one process, one thread mostly


def test_resumedAreResumedAndFullAreNot(run):
    for sample in run["handshake-client-resumed"]["samples"]:
        assert sample["resumed"] == sample["ops"]
    for sample in run["handshake-client"]["samples"]:
        assert sample["resumed"] in (0, None)  # None: tcp, no TLS


def test_negotiatedAsRequested(run):
    negotiated = run["handshake-client"]["negotiated"]
    assert negotiated["tlsfast"]["version"] == negotiated["twisted"]["version"] == "TLSv1.3"
    assert negotiated["tlsfast"]["cipher"] == "TLS_AES_128_GCM_SHA256"
    assert not run["handshake-client"]["flags"].get("tlsfast")


def test_mutualTLSIsUnavailable(tmp_path):
    done = _bench("handshake-client", "--stacks", "tlsfast", "--reps", "1", "--seconds", "0.2", "--mtls")
    assert "handshake-client" in done.stdout + done.stderr
    assert "client certificate" in done.stdout + done.stderr


def test_resumeOnlyWhereAClientCanOfferASession():
    done = subprocess.run([sys.executable, "-m", "tlsfast.bench.handshake_client", "--stack", "asyncio",
                           "--port", "1", "--ca", "x", "--resume"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--resume: only twisted, tlsfast" in done.stderr


def test_serverClosingIsOneLine():
    """A server that accepts and closes at once ends the client with one
    line, no traceback."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def closeEach():
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                connection.close()

        threading.Thread(target=closeEach, daemon=True).start()
        done = subprocess.run([sys.executable, "-m", "tlsfast.bench.handshake_client", "--stack", "tcp",
                               "--port", str(listener.getsockname()[1]), "--ca", "unused", "--seconds", "0.2"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "the server closed before answering" in done.stderr
    assert "Traceback" not in done.stderr
