"""
The configuration is parsed once into frozen objects: derived values are
declared fields computed at construction, nothing assigns to a config
afterwards, and a reload builds a new one (a failed reload keeps the old).
"""

from __future__ import annotations

import io
from dataclasses import FrozenInstanceError, fields, replace

import pytest
from twisted.internet.task import Clock

from tlsfast.proxy._config import ListenerConfig, ProxyConfig, ProxyConfigError, parseConfig, parseListener
from tlsfast.proxy._log import Logger
from tlsfast.proxy._server import ProxyServer
from tlsfast.proxy._workers import _reservePorts


def _listener(pems, **more):
    return {"listen": "127.0.0.1:0", "backend": "127.0.0.1:9", "cert": pems.cert, "key": pems.key,
            "alpn": "h2,http/1.1", "routes": {"a.example": "127.0.0.1:10"}, **more}


def test_assigning_to_a_config_raises(pems):
    config = parseConfig({"drain_timeout": 3}, [_listener(pems)])
    listener = config.listeners[0]
    for target, name, value in [(listener, "idle_timeout", 1.0), (listener, "connectTimeout", 1.0),
                                (listener, "listenAddress", ("127.0.0.1", 1)), (config, "drain_timeout", 1.0),
                                (config, "metricsAddress", None), (config, "listeners", ())]:
        with pytest.raises(FrozenInstanceError):
            setattr(target, name, value)
    with pytest.raises(AttributeError):  # slots: no undeclared attribute either
        object.__setattr__(listener, "somethingElse", 1)
    with pytest.raises(TypeError):  # its tables are read-only too
        listener.routes["b.example"] = "127.0.0.1:11"  # type: ignore[index]  # read-only on purpose: the assignment must raise
    with pytest.raises(TypeError):
        listener.alpnRouteAddresses["h2"] = ("127.0.0.1", 1)  # type: ignore[index]  # read-only on purpose: the assignment must raise
    assert isinstance(config.listeners, tuple) and isinstance(listener.alpn, str)


def test_derived_values_are_declared_fields_computed_at_construction(pems):
    listener = parseListener(_listener(pems), 2)
    declared = {f.name for f in fields(ListenerConfig)}
    assert {"listenAddress", "backendAddress", "routeTable", "alpnProtocols", "clientCertificatePolicy",
            "handshakeTimeout", "connectTimeout", "backendHandshakeTimeout", "proxyHeaderTimeout"} <= declared
    assert listener.name == "l2"
    assert listener.listenAddress == ("127.0.0.1", 0) and listener.backendAddress == ("127.0.0.1", 9)
    assert listener.alpnProtocols == ("h2", "http/1.1")
    assert listener.clientCertificatePolicy == "none"
    assert listener.backendFor("a.example") == ("127.0.0.1", 10)
    # A changed copy is checked and derived again: no stale derived value.
    moved = replace(listener, backend="127.0.0.1:12", alpn=["h2"])
    assert moved.backendAddress == ("127.0.0.1", 12) and moved.alpnProtocols == ("h2",)
    assert listener.backendAddress == ("127.0.0.1", 9)
    with pytest.raises(ProxyConfigError, match="listener l2: backend port must not be 0"):
        replace(listener, backend="127.0.0.1:0")


def test_reserving_worker_ports_builds_a_new_config(pems):
    config = parseConfig({"metrics": "127.0.0.1:0"}, [_listener(pems)])
    reserved, sockets = _reservePorts(config)
    try:
        assert reserved is not config
        assert config.listeners[0].listenAddress == ("127.0.0.1", 0) and config.metricsAddress == ("127.0.0.1", 0)
        assert reserved.listeners[0].listenAddress == ("127.0.0.1", sockets[0].getsockname()[1])
        assert reserved.metricsAddress == ("127.0.0.1", sockets[1].getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()


def test_reload_builds_a_new_config_and_a_failed_one_keeps_the_old(pems):
    first = parseConfig({}, [_listener(pems, name="web", idle_timeout=30)])
    loads = [parseConfig({}, [_listener(pems, name="web", idle_timeout=60)])]

    def loadConfig():
        if not loads:
            raise ProxyConfigError("listener web: idle_timeout must be a number of seconds > 0")
        return loads.pop()

    second = loads[0]
    stream = io.StringIO()
    server = ProxyServer(first, Clock(), Logger(stream=stream), loadConfig)
    server.build()
    [listener] = server.listeners
    server.reload()
    assert server.config is second and listener.config is second.listeners[0]
    assert listener.config.idle_timeout == 60 and first.listeners[0].idle_timeout == 30  # the old one untouched
    server.reload()  # fails
    assert server.config is second and listener.config is second.listeners[0]
    assert server.reloads == {"success": 1, "failure": 1}
    assert "event=reload_failed" in stream.getvalue()


def test_proxy_config_checks_at_construction(pems):
    listener = parseListener(_listener(pems, name="web"), 0)
    with pytest.raises(ProxyConfigError, match="listener name 'web' is used twice"):
        ProxyConfig((listener, listener))
    with pytest.raises(ProxyConfigError, match="no listener configured"):
        ProxyConfig(())
    with pytest.raises(ProxyConfigError, match="config: drain_timeout must be a number of seconds >= 0"):
        ProxyConfig((listener,), drain_timeout=-1)
