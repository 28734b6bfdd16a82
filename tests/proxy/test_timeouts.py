"""
One timeout per phase of a connection (docs/proxy.md, "Timeouts"): each
fires for its own phase and the others leave that phase alone; the old
wide handshake_timeout keeps working as a deprecated alias, with one
warning; the settings are checked like every other.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tests.proxy.helpers import TIMEOUT, echo, runProxy
from tlsfast.proxy._acceptproxy import ProxyHeaderFactory
from tlsfast.proxy._config import parseListener
from tlsfast.proxy._relay import ListenerTLS

V1_START = b"PROXY TCP4 "  # a PROXY v1 header that stops here

# The timeouts split from handshake_timeout, as flags.
PHASE_FLAGS = {
    "handshake": "--handshake-timeout",
    "connect": "--connect-timeout",
    "backend_handshake": "--backend-handshake-timeout",
    "proxy_header": "--proxy-header-timeout",
}


@pytest.fixture
def unanswered() -> Iterator[int]:
    """
    A port whose connects hang: a listening socket whose accept queue
    (backlog 0) is full and never accepted from, so the kernel drops
    further SYNs instead of answering or refusing them.
    """
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(0)
        port = listening.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
            yield port


def silent(sock: socket.socket) -> None:
    """A backend that accepts and never says a word (no TLS handshake) until the proxy goes."""
    while sock.recv(65536):
        pass


@dataclass
class Phase:
    args: list[str]  # the listener's flags
    stall: Callable[[int], socket.socket]  # a client connection that stays in this phase
    expired: str  # the log line saying this phase's deadline expired


def _tcp(port: int, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if first:
        sock.sendall(first)
    return sock


def phase(name: str, pems, backend, unanswered: int) -> Phase:
    originate = ["--mode", "originate", "--backend-ca", pems.ca, "--backend-name", "backend.example"]
    if name == "handshake":  # a TLS client that never starts its handshake
        return Phase(["--backend", f"127.0.0.1:{backend(echo).port}", "--cert", pems.cert, "--key", pems.key],
                     _tcp, r"event=close .*by=handshake_failed")
    if name == "connect":  # a backend that never answers the connect
        return Phase(["--backend", f"127.0.0.1:{unanswered}", *originate],
                     lambda port: _tcp(port, b"hello"), r"event=backend_failed .*reason=timeout")
    if name == "backend_handshake":  # a backend that connects and never handshakes
        return Phase(["--backend", f"127.0.0.1:{backend(silent).port}", *originate],
                     lambda port: _tcp(port, b"hello"),
                     r"event=backend_failed .*reason=timeout .*TLS handshake not complete after 0.3 s")
    assert name == "proxy_header"  # a balancer that starts a PROXY header and stops
    return Phase(["--backend", f"127.0.0.1:{backend(echo).port}", "--cert", pems.cert, "--key", pems.key,
                  "--accept-proxy"],
                 lambda port: _tcp(port, V1_START), r"event=close .*by=proxy_header_failed")


def timeoutFlags(own: str, ownSeconds: float, othersSeconds: float) -> list[str]:
    flags = []
    for name, flag in PHASE_FLAGS.items():
        flags += [flag, str(ownSeconds if name == own else othersSeconds)]
    return flags


def closedByTheProxy(sock: socket.socket) -> bool:
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


@pytest.mark.parametrize("name", PHASE_FLAGS)
def test_each_timeout_ends_its_own_phase(name, pems, backend, unanswered, start_proxy):
    stalled = phase(name, pems, backend, unanswered)
    proxy = start_proxy("--listen", "127.0.0.1:0", *stalled.args, *timeoutFlags(name, 0.3, 30))
    try:
        with stalled.stall(proxy.port) as sock:
            started = time.monotonic()
            assert closedByTheProxy(sock)
            assert time.monotonic() - started < 15  # its own 0.3 s, not the others' 30
        proxy.waitFor(stalled.expired)
        if name in ("connect", "backend_handshake"):  # the client whose backend never came
            assert proxy.waitFor(r"event=close .*by=backend_failed")
    finally:
        proxy.stop()


@pytest.mark.parametrize("name", PHASE_FLAGS)
def test_the_other_timeouts_leave_a_phase_alone(name, pems, backend, unanswered, start_proxy):
    stalled = phase(name, pems, backend, unanswered)
    proxy = start_proxy("--listen", "127.0.0.1:0", *stalled.args, *timeoutFlags(name, 30, 0.3))
    try:
        with stalled.stall(proxy.port) as sock:
            sock.settimeout(2.0)  # well past the others' 0.3 s
            with pytest.raises(TimeoutError):
                sock.recv(1)
        assert not [line for line in proxy.lines if re.search(r"event=(close|backend_failed) ", line)]
    finally:
        proxy.stop()


# -- the deprecated wide handshake_timeout -----------------------------------------------------


def test_handshake_timeout_alone_still_bounds_the_connect_with_one_warning(pems, unanswered, start_proxy):
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{unanswered}", "--mode", "originate",
                        "--backend-ca", pems.ca, "--backend-name", "backend.example", "--handshake-timeout", "0.3")
    try:
        with _tcp(proxy.port, b"hello") as sock:
            started = time.monotonic()
            assert closedByTheProxy(sock)
            assert time.monotonic() - started < 5  # 0.3 s, not connect_timeout's default 10
        proxy.waitFor(r"event=backend_failed .*reason=timeout")
        [warning] = [line for line in proxy.lines if "event=deprecated" in line]
        assert "listener=l0 setting=handshake_timeout use=connect_timeout,backend_handshake_timeout " in warning
        assert "level=warn" in warning
    finally:
        proxy.stop()


def test_no_warning_once_the_new_timeouts_are_set(pems, start_proxy, backend):
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{backend(echo).port}",
                        "--cert", pems.cert, "--key", pems.key, "--handshake-timeout", "3",
                        "--connect-timeout", "4")
    proxy.stop()
    assert not [line for line in proxy.lines if "deprecated" in line]


def _settings(**more):
    return {"listen": "127.0.0.1:0", "backend": "127.0.0.1:9", "mode": "originate",
            "backend_name": "backend.example", **more}


def test_the_alias_gives_its_value_to_the_timeouts_not_set():
    listener = parseListener(_settings(handshake_timeout=3, backend_handshake_timeout=4, accept_proxy=True), 0)
    assert (listener.handshakeTimeout, listener.connectTimeout, listener.backendHandshakeTimeout,
            listener.proxyHeaderTimeout) == (3, 3, 4, 3)
    assert listener.inheritedTimeouts == ("connect_timeout", "proxy_header_timeout")
    # Only what the listener has a phase for is worth a warning (no PROXY header, no TLS backend here).
    plain = parseListener(_settings(handshake_timeout=3, mode="terminate", backend_name=None,
                                    cert=__file__), 0)
    assert plain.inheritedTimeouts == ("connect_timeout",)
    assert plain.proxyHeaderTimeout == plain.backendHandshakeTimeout == 3
    unset = parseListener(_settings(), 0)
    assert (unset.handshakeTimeout, unset.connectTimeout, unset.backendHandshakeTimeout,
            unset.proxyHeaderTimeout, unset.inheritedTimeouts) == (10, 10, 10, 10, ())
    split = parseListener(_settings(handshake_timeout=3, connect_timeout=1, backend_handshake_timeout=2,
                                    proxy_header_timeout=5), 0)
    assert (split.handshakeTimeout, split.connectTimeout, split.backendHandshakeTimeout,
            split.proxyHeaderTimeout, split.inheritedTimeouts) == (3, 1, 2, 5, ())


def test_check_warns_of_the_alias_in_toml(pems, tmp_path):
    config = tmp_path / "proxy.toml"
    config.write_text(f'[[listener]]\nname = "web"\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:9"\n'
                      f'cert = "{pems.cert}"\nkey = "{pems.key}"\naccept_proxy = true\nhandshake_timeout = 3\n')
    checked = runProxy(["--check", "--config", config])
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "tlsfast proxy: configuration OK (1 listener(s): web)\n"
    [warning] = checked.stderr.splitlines()
    assert warning.startswith("tlsfast proxy: warning: listener web: handshake_timeout also sets "
                              "connect_timeout, proxy_header_timeout here")
    assert "(--connect-timeout, --proxy-header-timeout)" in warning


# -- checked like every setting ----------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--connect-timeout", "--backend-handshake-timeout", "--proxy-header-timeout",
                                  "--handshake-timeout"])
@pytest.mark.parametrize("check", [[], ["--check"]])
def test_flags_must_be_positive(pems, flag, check):
    completed = runProxy([*check, "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--cert", pems.cert,
                          "--key", pems.key, flag, "0"])
    assert completed.returncode == 2, completed.stderr
    key = flag[2:].replace("-", "_")
    assert completed.stderr == f"tlsfast proxy: error: listener l0: {key} must be a number of seconds > 0, " \
                               "not 0.0 (a number)\n"


@pytest.mark.parametrize("check", [[], ["--check"]])
def test_toml_values_of_the_wrong_type(pems, tmp_path, check):
    config = tmp_path / "proxy.toml"
    config.write_text(f'[[listener]]\nname = "web"\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:9"\n'
                      f'cert = "{pems.cert}"\nkey = "{pems.key}"\nproxy_header_timeout = "5"\n')
    completed = runProxy([*check, "--config", config])
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr == (f"tlsfast proxy: error: config file {str(config)!r}: listener web: "
                                "proxy_header_timeout must be a number of seconds > 0, not '5' (a string)\n")


def test_config_file_and_timeout_flags_do_not_mix(tmp_path):
    config = tmp_path / "proxy.toml"
    config.write_text('[[listener]]\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:9"\n')
    completed = runProxy(["--config", config, "--connect-timeout", "3"])
    assert completed.returncode == 2
    assert "--config cannot be combined with --connect-timeout" in completed.stderr


# -- each timeout reaches its own layer ----------------------------------------------------------


def test_tls_options_get_their_own_timeouts(pems):
    config = parseListener({"listen": "127.0.0.1:0", "backend": "127.0.0.1:9", "mode": "reencrypt",
                            "cert": pems.cert, "key": pems.key, "backend_name": "backend.example",
                            "handshake_timeout": 1, "backend_handshake_timeout": 2, "connect_timeout": 3,
                            "proxy_header_timeout": 4}, 0)
    tls = ListenerTLS(config, None)
    assert tls.serverOptions.monitor.handshakeTimeout == 1
    assert tls.clientOptionsFor(None).monitor.handshakeTimeout == 2


class _HeaderListener:
    """What a ProxyHeaderReceiver needs of its Listener: the config, a clock, the waiting set."""

    def __init__(self, config):
        self.config = config
        self.reactor = Clock()
        self.awaitingHeader: set = set()
        self.failures: list[str] = []

    def headerWaitStarted(self, receiver):
        self.awaitingHeader.add(receiver)

    def headerWaitEnded(self, receiver):
        self.awaitingHeader.discard(receiver)

    def proxyHeaderFailed(self, receiver, why):
        self.failures.append(why)


def test_the_proxy_header_wait_is_proxy_header_timeout():
    config = parseListener(_settings(accept_proxy=True, handshake_timeout=1, connect_timeout=1,
                                     backend_handshake_timeout=1, proxy_header_timeout=5), 0)
    listener = _HeaderListener(config)
    receiver = ProxyHeaderFactory(Factory.forProtocol(Protocol), listener).buildProtocol(None)
    transport = StringTransport()
    receiver.makeConnection(transport)
    receiver.dataReceived(V1_START)
    listener.reactor.advance(4.9)  # past every other timeout
    assert not listener.failures and listener.awaitingHeader == {receiver}
    listener.reactor.advance(0.1)
    assert listener.failures == ["no complete PROXY header after 5 s"]
    assert not listener.awaitingHeader
