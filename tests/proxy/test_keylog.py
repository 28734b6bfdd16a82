"""
Key logging only on request: the proxy ignores SSLKEYLOGFILE; --keylog FILE
(TOML keylog) writes the secrets of every session to FILE, created 0600, and
says so in the log at startup.
"""

import os
import stat

import pytest

from tests.proxy.helpers import clientContext, connect, echo, echoRoundTrip, serverContext


@pytest.fixture
def usualUmask():
    previous = os.umask(0o022)  # inherited by the proxy: files would be 0644
    yield
    os.umask(previous)


def relayOnce(port, pems, clientKeyLog=None):
    context = clientContext(pems.ca)
    if clientKeyLog is not None:
        context.keylog_filename = str(clientKeyLog)
    with connect(port, context) as sock:
        sent, received = echoRoundTrip(sock, 1000)
        assert received == sent
        sock.unwrap()


def test_sslkeylogfile_is_ignored(pems, start_proxy, backend, tmp_path, monkeypatch):
    path = tmp_path / "env-keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))  # inherited by the proxy process
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    monkeypatch.delenv("SSLKEYLOGFILE")  # CPython's ssl honours it too: not for our client
    relayOnce(proxy.port, pems)
    proxy.waitFor(r"event=close ")
    assert not path.exists()
    assert not any("keylog" in line or "SSLKEYLOGFILE" in line for line in proxy.lines)


@pytest.mark.parametrize("via", ["flag", "toml"])
def test_keylog_explicitly(pems, start_proxy, backend, tmp_path, usualUmask, via):
    path = tmp_path / "keys.log"
    server = backend(echo)
    if via == "flag":
        proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                            "--cert", pems.cert, "--key", pems.key, "--keylog", path)
    else:
        config = tmp_path / "proxy.toml"
        config.write_text(f'keylog = "{path}"\n[[listener]]\nlisten = "127.0.0.1:0"\n'
                          f'backend = "127.0.0.1:{server.port}"\ncert = "{pems.cert}"\nkey = "{pems.key}"\n')
        proxy = start_proxy("--config", config)
    [enabled] = proxy.waitFor(r"event=keylog_enabled")
    assert f"path={path}" in enabled and "level=warn" in enabled
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    clientKeys = tmp_path / "client-keys.log"
    relayOnce(proxy.port, pems, clientKeys)
    proxy.waitFor(r"event=close ")
    secrets = {line for line in clientKeys.read_text().splitlines() if not line.startswith("#")}
    assert len(secrets) == 5 and secrets <= set(path.read_text().splitlines())  # TLS 1.3: five per session
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keylog_covers_the_backend_side(pems, start_proxy, backend, tmp_path):
    """reencrypt: the sessions towards backends are logged too."""
    path = tmp_path / "keys.log"
    server = backend(echo, serverContext(pems.backendCert, pems.backendKey))
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}", "--mode", "reencrypt",
                        "--cert", pems.cert, "--key", pems.key, "--backend-ca", pems.ca,
                        "--backend-name", "backend.example", "--keylog", path)
    relayOnce(proxy.port, pems)
    proxy.waitFor(r"event=close ")
    randoms = {line.split(" ")[1] for line in path.read_text().splitlines()}
    assert len(randoms) == 2  # the client's session and the backend's
