"""Bad configuration: one actionable line on stderr and a non-zero exit, before serving."""

import signal
import socket
from dataclasses import fields

import pytest

from tests.proxy.helpers import clientContext, connect, echo, runProxy
from tests.proxy.hostile import assertNoTraceback
from tlsfast.proxy._config import LISTENER_KEYS, PROXY_KEYS, ListenerConfig, ProxyConfig


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


# -- values of the wrong type: one line naming file, listener, key, expectation, value (finding 5) --

BASE = '[[listener]]\nname = "web"\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:9"\nmode = "originate"\n' \
       'backend_name = "x.example"\n'


@pytest.mark.parametrize("setting, words", [
    ('max_connections = "10"', "max_connections must be an integer >= 1, not '10' (a string)"),
    ("max_connections = true", "max_connections must be an integer >= 1, not True (a boolean)"),
    ("max_connections = 0", "max_connections must be an integer >= 1, not 0 (an integer)"),
    ("max_connections = 2.5", "max_connections must be an integer >= 1, not 2.5 (a number)"),
    ('handshake_timeout = "5"', "handshake_timeout must be a number of seconds > 0, not '5' (a string)"),
    ("idle_timeout = -1", "idle_timeout must be a number of seconds > 0, not -1 (an integer)"),
    ("idle_timeout = inf", "idle_timeout must be a number of seconds > 0, not inf (a number)"),
    ("idle_timeout = nan", "idle_timeout must be a number of seconds > 0, not nan (a number)"),
    ("alpn = 5", "alpn must be a list of strings (or one comma-separated string), not 5 (an integer)"),
    ("alpn = [1, 2]", "alpn must be a list of strings"),
    ('routes = "x"', "routes must be a table of names to a string, not 'x' (a string)"),
    ("routes = { a = 1 }", "routes must be a table of names to a string, not {'a': 1} (a table)"),
    ('sni_certs = { a = ["c", "k", "x"] }', "sni_certs must be a table of names to a file, or [certificate, key]"),
    ("accept_proxy = 1", "accept_proxy must be true or false, not 1 (an integer)"),
    ('mode = "relay"', "mode must be one of 'terminate', 'originate', 'reencrypt', not 'relay' (a string)"),
    ('proxy_protocol = "v3"', "proxy_protocol must be one of 'v1', 'v2', not 'v3'"),
    ('client_cert = "maybe"', "client_cert must be one of 'none', 'optional', 'required'"),
    ("cert = [1]", "cert must be a string, not [1] (an array)"),
    ("name2 = 1", "unknown key(s) name2"),
])
def test_listener_value_of_the_wrong_type(tmp_path, setting, words):
    config = tmp_path / "proxy.toml"
    config.write_text(BASE.replace('mode = "originate"\n', "") + setting + "\n"
                      if setting.startswith("mode") else BASE + setting + "\n")
    completed = runProxy(["--config", config])
    assert completed.returncode == 2, completed.stderr
    line = _error_line(completed)
    assert f"config file {str(config)!r}: listener web: {words}" in line


@pytest.mark.parametrize("top, words", [
    ("listen = 5\n", "listener 0: listen must be a string, not 5 (an integer)"),  # unnamed: its index
    ('name = 7\nlisten = "127.0.0.1:0"\n', "listener 0: name must be a string, not 7 (an integer)"),
])
def test_unnamed_listener(tmp_path, top, words):
    config = tmp_path / "proxy.toml"
    config.write_text('[[listener]]\nbackend = "127.0.0.1:9"\nmode = "originate"\nbackend_name = "x"\n' + top)
    completed = runProxy(["--config", config])
    assert completed.returncode == 2
    assert f"config file {str(config)!r}: {words}" in _error_line(completed)


@pytest.mark.parametrize("setting, words", [
    ('drain_timeout = "10"', "drain_timeout must be a number of seconds >= 0, not '10' (a string)"),
    ("drain_timeout = -1", "drain_timeout must be a number of seconds >= 0, not -1 (an integer)"),
    ("metrics = 9100", "metrics must be a string, not 9100 (an integer)"),
    ('log_format = "xml"', "log_format must be one of 'logfmt', 'json', not 'xml'"),
    ("keylog = true", "keylog must be a string, not True (a boolean)"),
    ("listener = 5", "use [[listener]] tables"),
    ("drain = 1", "unknown key(s) drain"),
])
def test_process_value_of_the_wrong_type(tmp_path, setting, words):
    config = tmp_path / "proxy.toml"
    document = BASE if setting.startswith("listener") is False else ""
    config.write_text(setting + "\n" + document)
    completed = runProxy(["--config", config])
    assert completed.returncode == 2
    assert f"config file {str(config)!r}: {words}" in _error_line(completed)


def test_every_setting_has_a_type():
    """The type tables and the dataclasses list the same settings (a new one needs its line)."""
    assert set(LISTENER_KEYS) == {f.name for f in fields(ListenerConfig) if not f.metadata.get("derived")}
    assert set(PROXY_KEYS) == {f.name for f in fields(ProxyConfig) if not f.metadata.get("derived")} - {"listeners"}


def test_flags_are_checked_by_the_same_table():
    completed = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--mode", "originate",
                          "--backend-name", "b", "--max-connections", "-3"])
    assert completed.returncode == 2
    assert "max_connections must be an integer >= 1, not -3" in _error_line(completed)


def test_reload_with_a_value_of_the_wrong_type_keeps_the_old_config(tmp_path, pems, start_proxy, backend):
    server = backend(echo)
    config = tmp_path / "proxy.toml"
    good = f'[[listener]]\nname = "web"\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:{server.port}"\n' \
           f'cert = "{pems.cert}"\nkey = "{pems.key}"\n'
    config.write_text(good)
    proxy = start_proxy("--config", config, "--log-level", "info")
    config.write_text(good + 'max_connections = "10"\n')
    proxy.process.send_signal(signal.SIGHUP)
    [failed] = proxy.waitFor(r"event=reload_failed")
    assert "listener web: max_connections must be an integer >= 1, not '10' (a string)" in failed
    with connect(proxy.ports["web"], clientContext(pems.ca)) as sock:
        sock.sendall(b"old config")
        assert sock.recv(100) == b"old config"
    assert proxy.terminate() == 0
    assertNoTraceback(proxy.lines)
    assert not any("reloaded" in line for line in proxy.lines)
