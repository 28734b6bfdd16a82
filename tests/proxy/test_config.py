"""Bad configuration: one actionable line on stderr and a non-zero exit, before serving."""

import socket

import pytest

from tests.proxy.helpers import runProxy


def _error_line(completed):
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("tlsfast proxy: error: ")
    return lines[0]


def test_missing_cert_file(pems, tmp_path):
    missing = tmp_path / "nope.pem"
    completed = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                          "--cert", missing, "--key", pems.key])
    assert completed.returncode == 2
    assert str(missing) in _error_line(completed)


def test_key_does_not_match_cert(pems):
    completed = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                          "--cert", pems.cert, "--key", pems.otherKey])
    assert completed.returncode == 2
    assert "match" in _error_line(completed).lower()


def test_port_in_use(pems):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        completed = runProxy(["--listen", f"127.0.0.1:{port}", "--backend", "127.0.0.1:9",
                              "--cert", pems.cert, "--key", pems.key])
    assert completed.returncode == 3
    line = _error_line(completed)
    assert f"127.0.0.1:{port}" in line and "in use" in line.lower()


def test_metrics_port_in_use(pems):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        completed = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--cert", pems.cert,
                              "--key", pems.key, "--metrics", f"127.0.0.1:{port}"])
    assert completed.returncode == 3
    line = _error_line(completed)
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in line and "in use" in line.lower()


@pytest.mark.parametrize("args, words", [
    (["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9"], "--cert"),  # terminate needs a certificate
    (["--listen", "127.0.0.1", "--backend", "127.0.0.1:9", "--mode", "originate"], "HOST:PORT"),
    (["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--mode", "originate"], "--backend-name"),
    (["--backend", "127.0.0.1:9", "--mode", "originate"], "--listen"),
    # .invalid never resolves (RFC 6761)
    (["--listen", "127.0.0.1:0", "--backend", "backend.invalid:80", "--mode", "originate"],
     "backend host 'backend.invalid' does not resolve"),
    (["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--mode", "originate", "--backend-name", "b",
      "--workers", "0"], "--workers"),
])
def test_usage_mistakes(args, words):
    completed = runProxy(args)
    assert completed.returncode == 2
    assert words in _error_line(completed)


def test_toml_unknown_key(tmp_path):
    config = tmp_path / "proxy.toml"
    config.write_text('[[listener]]\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:9"\nmode = "originate"\n'
                      'backend_name = "x.example"\nlisen = "typo"\n')
    completed = runProxy(["--config", config])
    assert completed.returncode == 2
    assert "lisen" in _error_line(completed)
