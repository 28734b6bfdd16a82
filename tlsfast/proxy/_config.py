"""
Listener configuration: from command-line flags or a TOML file, checked
before the reactor starts, so a mistake is one line and a non-zero exit
rather than a failure at the first connection.

The settings (dicts, as in TOML: L{readToml}, or the flags) are parsed
once, by L{parseConfig}, into frozen dataclasses: constructing a
L{ListenerConfig} or L{ProxyConfig} checks it and computes every derived
value into a declared field.  Nothing changes one afterwards; a reload
(SIGHUP) parses the files again into new objects.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, NamedTuple

from tlsfast.options._servername import (
    InvalidServerName,
    ServerNameMap,
    normalizePattern,
)
from tlsfast.proxy._configtypes import (
    BOOLEAN,
    FILES,
    NAME,
    TEXT,
    TEXT_LIST,
    Kind,
    ProxyConfigError,
    checkTypes,
    choice,
    integer,
    seconds,
    table,
)

MODES = ("terminate", "originate", "reencrypt")

# TLS towards clients (the listener) / towards the backend, per mode.
TLS_FRONT = {"terminate": True, "originate": False, "reencrypt": True}
TLS_BACK = {"terminate": False, "originate": True, "reencrypt": True}

DEFAULT_HANDSHAKE_TIMEOUT = 10.0
# Split from handshake_timeout, which bounded all of these: the same default, so
# a configuration that sets none of them behaves as before.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_BACKEND_HANDSHAKE_TIMEOUT = 10.0
DEFAULT_PROXY_HEADER_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_CLOSE_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_DRAIN_TIMEOUT = 10.0

CLIENT_CERT_MODES = ("none", "optional", "required")
LOG_LEVELS = ("debug", "info", "warn", "error")
PROXY_PROTOCOL_VERSIONS = ("v1", "v2")
LOG_FORMATS = ("logfmt", "json")

__all__ = ["ProxyConfigError"]  # defined with the type checks, imported from here


def parseAddress(text: str, what: str) -> tuple[str, int]:
    """
    C{HOST:PORT} (C{[v6]:PORT} for IPv6) to C{(host, port)}.  Port 0 is only
    meaningful for a listener (any free port).
    """
    host, sep, port = str(text).rpartition(":")
    if not sep or not host:
        raise ProxyConfigError(f"{what} {text!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise ProxyConfigError(f"{what} {text!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ProxyConfigError(f"{what} {text!r}: port {number} is out of range")
    return host, number


def _checkResolves(host: str, where: str) -> None:
    """A backend host name that does not resolve is a mistake worth stopping for (as haproxy does)."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ProxyConfigError(f"{where}: backend host {host!r} does not resolve ({e.strerror})") from None


def _readOnly(value: object) -> object:
    """A setting's container as a read-only copy (a frozen configuration holds no mutable lists or dicts)."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _readOnly(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(value)
    return value


def _set(config: object, **derived: object) -> None:
    # The frozen dataclass idiom: only __post_init__ (construction) sets fields.
    for name, value in derived.items():
        object.__setattr__(config, name, value)


class _SplitTimeout(NamedTuple):
    attribute: str  # the derived field holding its value
    default: float
    matters: Callable[[ListenerConfig], bool]  # does this listener have the phase it bounds?


# The timeouts handshake_timeout used to set too (its deprecated wider meaning).
SPLIT_TIMEOUTS: dict[str, _SplitTimeout] = {
    "connect_timeout": _SplitTimeout("connectTimeout", DEFAULT_CONNECT_TIMEOUT, lambda listener: True),
    "backend_handshake_timeout": _SplitTimeout("backendHandshakeTimeout", DEFAULT_BACKEND_HANDSHAKE_TIMEOUT,
                                               lambda listener: TLS_BACK[listener.mode]),
    "proxy_header_timeout": _SplitTimeout("proxyHeaderTimeout", DEFAULT_PROXY_HEADER_TIMEOUT,
                                          lambda listener: listener.accept_proxy),
}

# Derived fields: computed at construction from the settings, not settings themselves
# (and keyLogFile: the process's setting, handed to each listener).
_DERIVED: dict[str, object] = {"derived": True}


def derived() -> Any:
    """A field computed in __post_init__ from the settings (not settable, not a TOML key)."""
    return field(init=False, metadata=_DERIVED)


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """
    One listener: where it listens, where it forwards, and how.

    Constructing one checks it (L{ProxyConfigError} names the first
    problem) and computes every derived value (the camelCase fields) from
    the settings (the snake_case fields, as written in TOML); nothing
    changes it afterwards.  A reload builds a new one.
    """

    listen: str
    backend: str
    mode: str = "terminate"
    name: str = ""
    cert: str | None = None
    key: str | None = None
    backend_ca: str | None = None
    backend_name: str | None = None  # default: the backend host (if it is a name)
    backend_cert: str | None = None  # client certificate towards the backend (mutual TLS); may hold the key
    backend_key: str | None = None
    alpn: str | Sequence[str] = ()  # a list, or one comma-separated string
    routes: Mapping[str, str] = field(default_factory=dict)  # SNI name or "*.suffix" -> backend HOST:PORT
    alpn_routes: Mapping[str, str] = field(default_factory=dict)  # negotiated ALPN protocol -> backend
    sni_certs: Mapping[str, str | Sequence[str]] = field(default_factory=dict)  # name -> PEM or [cert, key]
    client_ca: str | None = None
    client_cert: str | None = None  # none | optional | required (default: required with client_ca)
    min_version: str = "1.2"
    ciphers: str | None = None  # TLS 1.2 cipher string
    tls13_ciphers: str | None = None
    groups: str | None = None
    proxy_protocol: str | None = None  # v1 | v2: a PROXY header to the backend
    accept_proxy: bool = False  # clients' connections start with a PROXY header (from a balancer)
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    session_tickets: int | None = None  # TLS 1.3 tickets per handshake; None: OpenSSL's 2
    # Each timeout bounds one phase (docs/proxy.md, "Timeouts"); None: not set (the default, or
    # for the three split from it, handshake_timeout's value: its deprecated wider meaning).
    handshake_timeout: float | None = None  # the client's TLS handshake
    connect_timeout: float | None = None  # the backend's TCP connect
    backend_handshake_timeout: float | None = None  # the backend's TLS handshake
    proxy_header_timeout: float | None = None  # accept_proxy: the PROXY header from the balancer
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT  # a graceful close's deadline, then both sides are aborted
    # Not a listener setting: the process's keylog (--keylog), given by the loader.
    keyLogFile: str | None = field(default=None, kw_only=True, metadata=_DERIVED)

    # -- derived at construction -------------------------------------------------
    listenAddress: tuple[str, int] = derived()
    backendAddress: tuple[str, int] = derived()
    backendServerName: str | None = derived()  # the name the backend's certificate must be valid for
    alpnProtocols: tuple[str, ...] = derived()
    routeTable: ServerNameMap[tuple[str, int]] = derived()
    alpnRouteAddresses: Mapping[str, tuple[str, int]] = derived()
    sniCertificates: Mapping[str, str | tuple[str, str]] = derived()  # name -> PEM, or (cert, key)
    clientCertificatePolicy: str = derived()  # none | optional | required
    handshakeTimeout: float = derived()
    connectTimeout: float = derived()
    backendHandshakeTimeout: float = derived()
    proxyHeaderTimeout: float = derived()
    inheritedTimeouts: tuple[str, ...] = derived()  # set from handshake_timeout (deprecated): name them

    def backendFor(self, serverName: str | None, alpn: str | None = None) -> tuple[str, int]:
        """
        The backend for a client: its SNI's route (exact, then wildcard),
        else the route of the ALPN protocol it negotiated, else the default.
        """
        if serverName and self.routeTable:
            routed = self.routeTable.lookup(serverName)
            if routed is not None:
                return routed
        if alpn and alpn in self.alpnRouteAddresses:
            return self.alpnRouteAddresses[alpn]
        return self.backendAddress

    def __post_init__(self) -> None:
        """Check the settings (raise L{ProxyConfigError} naming the first problem); derive the rest."""
        where = f"listener {self.name}" if self.name else "listener"
        checkTypes(settingsOf(self), LISTENER_KEYS, where)
        _set(self, routes=_readOnly(self.routes), alpn_routes=_readOnly(self.alpn_routes),
             sni_certs=_readOnly(self.sni_certs), alpn=_readOnly(self.alpn))
        listenAddress = parseAddress(self.listen, f"{where}: listen address")
        backendAddress = parseAddress(self.backend, f"{where}: backend address")
        if backendAddress[1] == 0:
            raise ProxyConfigError(f"{where}: backend port must not be 0")
        if TLS_FRONT[self.mode]:
            if not self.cert:
                raise ProxyConfigError(f"{where}: mode {self.mode} needs a certificate (--cert)")
        elif self.cert or self.key:
            raise ProxyConfigError(f"{where}: mode {self.mode} does not use --cert/--key (no TLS towards clients)")
        backendServerName = self.backend_name
        if TLS_BACK[self.mode]:
            if not backendServerName:
                host = backendAddress[0]
                try:
                    ipaddress.ip_address(host)
                except ValueError:
                    backendServerName = host
                else:
                    raise ProxyConfigError(
                        f"{where}: mode {self.mode} verifies the backend: give --backend-name "
                        f"(the name its certificate is for; the address {host} is not used as one)")
        elif self.backend_ca or self.backend_name or self.backend_cert or self.backend_key:
            raise ProxyConfigError(f"{where}: mode {self.mode} does not use --backend-ca/--backend-name/"
                                   "--backend-cert/--backend-key (no TLS towards the backend)")
        if self.backend_key and not self.backend_cert:
            raise ProxyConfigError(f"{where}: backend-key needs backend-cert (the certificate it belongs to)")
        for name in ("cert", "key", "backend_ca", "backend_cert", "backend_key"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ProxyConfigError(f"{where}: {name.replace('_', '-')} file {path!r} does not exist")
        if self.routes and not TLS_FRONT[self.mode]:
            raise ProxyConfigError(f"{where}: SNI routes need TLS from clients (mode terminate or reencrypt)")
        routes = {pattern: parseAddress(address, f"{where}: route {pattern!r}")
                  for pattern, address in self.routes.items()}
        try:
            routeTable: ServerNameMap[tuple[str, int]] = ServerNameMap(routes)
        except InvalidServerName as e:
            raise ProxyConfigError(f"{where}: route: {e} (a server name, or '*.' and a domain)") from None
        alpn = tuple(p for p in self.alpn.split(",") if p) if isinstance(self.alpn, str) else tuple(self.alpn)
        clientCertificatePolicy, sniCertificates = self._checkFrontTLS(where)
        alpnRouteAddresses = {}
        for protocol, address in self.alpn_routes.items():
            if protocol not in alpn:
                raise ProxyConfigError(f"{where}: ALPN route {protocol!r}: the listener does not offer it "
                                       f"(--alpn is {','.join(alpn) or 'empty'})")
            alpnRouteAddresses[protocol] = parseAddress(address, f"{where}: ALPN route {protocol!r}")
        for host, _ in {backendAddress, *routeTable.values(), *alpnRouteAddresses.values()}:
            _checkResolves(host, where)
        _set(self, listenAddress=listenAddress, backendAddress=backendAddress, backendServerName=backendServerName,
             alpnProtocols=alpn, routeTable=routeTable, alpnRouteAddresses=MappingProxyType(alpnRouteAddresses),
             sniCertificates=MappingProxyType(sniCertificates), clientCertificatePolicy=clientCertificatePolicy)
        self._deriveTimeouts()

    def _deriveTimeouts(self) -> None:
        """
        One timeout per phase.  handshake_timeout once bounded all of them:
        set alone, it still sets those that are not (deprecated; the names
        that matter here are kept in C{inheritedTimeouts}, for one warning).
        """
        alias = self.handshake_timeout
        inherited = []
        for name, split in SPLIT_TIMEOUTS.items():
            value = getattr(self, name)
            if value is None and alias is not None:
                value = alias
                if split.matters(self):
                    inherited.append(name)
            _set(self, **{split.attribute: split.default if value is None else value})
        _set(self, handshakeTimeout=DEFAULT_HANDSHAKE_TIMEOUT if alias is None else alias,
             inheritedTimeouts=tuple(inherited))

    def _checkFrontTLS(self, where: str) -> tuple[str, dict[str, str | tuple[str, str]]]:
        """
        The settings of TLS towards clients: only with TLS there, files that
        exist.  Returns the client certificate policy and the SNI certificates.
        """
        front = {"client_ca": self.client_ca, "sni_certs": self.sni_certs, "alpn_routes": self.alpn_routes,
                 "ciphers": self.ciphers, "tls13_ciphers": self.tls13_ciphers, "groups": self.groups,
                 "client_cert": self.client_cert if self.client_cert not in (None, "none") else None}
        if not TLS_FRONT[self.mode]:
            given = [name for name, value in front.items() if value]
            if given or self.min_version != "1.2":
                flag = (given or ["min_version"])[0].replace("_", "-")
                raise ProxyConfigError(f"{where}: {flag} needs TLS from clients (mode terminate or reencrypt)")
            return "none", {}
        policy = self.client_cert
        if policy is None:
            policy = "required" if self.client_ca else "none"
        if policy != "none" and not self.client_ca:
            raise ProxyConfigError(f"{where}: client-cert {policy} needs --client-ca "
                                   "(the CAs client certificates must chain to)")
        if self.client_ca is not None and not os.path.isfile(self.client_ca):
            raise ProxyConfigError(f"{where}: client-ca file {self.client_ca!r} does not exist")
        checked: dict[str, str | tuple[str, str]] = {}
        for name, source in self.sni_certs.items():
            try:
                normalizePattern(name)  # ServerOptions would refuse it too, less precisely
            except InvalidServerName as e:
                raise ProxyConfigError(f"{where}: sni-cert: {e}") from None
            files = [source] if isinstance(source, str) else list(source)
            if not 1 <= len(files) <= 2:
                raise ProxyConfigError(f"{where}: sni-cert {name!r}: a certificate file, or [cert, key]")
            for path in files:
                if not os.path.isfile(path):
                    raise ProxyConfigError(f"{where}: sni-cert {name!r}: file {path!r} does not exist")
            checked[name] = (files[0], files[1]) if len(files) == 2 else files[0]
        return policy, checked


def settingsOf(config: ListenerConfig | ProxyConfig) -> dict[str, object]:
    """The settings of a configuration object (its fields that are neither derived nor sub-configurations)."""
    return {f.name: getattr(config, f.name) for f in fields(config)
            if not f.metadata.get("derived") and f.name != "listeners"}


def deprecationNote(listener: ListenerConfig) -> str | None:
    """What to tell a user who set handshake_timeout alone (its deprecated wider meaning), or None."""
    if not listener.inheritedTimeouts:
        return None
    names = ", ".join(listener.inheritedTimeouts)
    flags = ", ".join("--" + name.replace("_", "-") for name in listener.inheritedTimeouts)
    return (f"handshake_timeout also sets {names} here, not set themselves (its old meaning, deprecated): "
            f"set {names} ({flags}); handshake_timeout is for the client's TLS handshake only")


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """
    All listeners of one proxy process.  Constructing one checks the
    process settings and that listener names are unique; it is not
    changed afterwards (a reload builds a new one).
    """

    listeners: tuple[ListenerConfig, ...]
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    metrics: str | None = None  # HOST:PORT for Prometheus scrapes
    # Process settings, read at start (flags override them; a reload keeps them).
    workers: int = 1
    log_level: str = "info"
    user: str | None = None  # drop root to this user after binding
    group: str | None = None  # ... and this group (default: the user's)
    log_format: str = "logfmt"  # or json
    keylog: str | None = None  # NSS key log of every TLS session (debugging only)

    metricsAddress: tuple[str, int] | None = derived()

    def __post_init__(self) -> None:
        checkTypes(settingsOf(self), PROXY_KEYS, "config")
        _set(self, listeners=tuple(self.listeners))
        if not self.listeners:
            raise ProxyConfigError("no listener configured")
        names = set()
        for listener in self.listeners:
            if listener.name in names:
                raise ProxyConfigError(f"listener name {listener.name!r} is used twice")
            names.add(listener.name)
        _set(self, metricsAddress=parseAddress(self.metrics, "metrics address") if self.metrics else None)


def parseListener(settings: Mapping[str, Any], index: int, keyLogFile: str | None = None) -> ListenerConfig:
    """The listener C{settings} (TOML keys) describe, the C{index}th: named C{l<index>} unless named."""
    return ListenerConfig(**{**settings, "name": settings.get("name") or f"l{index}"}, keyLogFile=keyLogFile)


def parseConfig(process: Mapping[str, Any], listeners: Sequence[Mapping[str, Any]]) -> ProxyConfig:
    """
    The configuration, parsed once: C{process} holds the top-level
    settings, C{listeners} each listener's (both as in TOML, types
    checked or not).  Raises L{ProxyConfigError} naming the first problem.
    """
    keylog = process.get("keylog")
    return ProxyConfig(tuple(parseListener(settings, index, keylog) for index, settings in enumerate(listeners)),
                       **process)


# What each setting accepts (checked at load and at reload): adding a
# setting is its dataclass field plus one line here.
LISTENER_KEYS: dict[str, Kind] = {
    "listen": TEXT,
    "backend": TEXT,
    "mode": choice(MODES),
    "name": TEXT,
    "cert": TEXT,
    "key": TEXT,
    "backend_ca": TEXT,
    "backend_name": TEXT,
    "backend_cert": TEXT,
    "backend_key": TEXT,
    "alpn": TEXT_LIST,
    "routes": table(TEXT),
    "alpn_routes": table(TEXT),
    "sni_certs": table(FILES),
    "client_ca": TEXT,
    "client_cert": choice(CLIENT_CERT_MODES),
    "min_version": TEXT,  # ServerOptions names the versions it knows
    "ciphers": TEXT,
    "tls13_ciphers": TEXT,
    "groups": TEXT,
    "proxy_protocol": choice(PROXY_PROTOCOL_VERSIONS),
    "accept_proxy": BOOLEAN,
    "max_connections": integer(1),
    "session_tickets": integer(0),
    "handshake_timeout": seconds(),
    "connect_timeout": seconds(),
    "backend_handshake_timeout": seconds(),
    "proxy_header_timeout": seconds(),
    "idle_timeout": seconds(),
    "close_timeout": seconds(),
}
PROXY_KEYS: dict[str, Kind] = {
    "drain_timeout": seconds(positive=False),
    "metrics": TEXT,
    "workers": integer(1),
    "log_level": choice(LOG_LEVELS),
    "user": NAME,
    "group": NAME,
    "log_format": choice(LOG_FORMATS),
    "keylog": TEXT,
}


def readToml(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """
    The settings of a TOML file, types checked (errors name the file),
    as L{parseConfig} takes them::

        drain_timeout = 10          # optional
        [[listener]]
        name = "web"                # optional
        listen = "127.0.0.1:8443"
        backend = "127.0.0.1:8080"
        mode = "terminate"
        cert = "server.crt"
        key = "server.key"
    """
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as e:
        raise ProxyConfigError(f"cannot read config file {path!r}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ProxyConfigError(f"config file {path!r}: {e}") from None
    tables = document.pop("listener", [])
    checkTypes(document, PROXY_KEYS, f"config file {path!r}")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ProxyConfigError(f"config file {path!r}: use [[listener]] tables")
    for index, listener in enumerate(tables):
        name = listener.get("name")
        where = f"config file {path!r}: listener {name if isinstance(name, str) and name else index}"
        checkTypes(listener, LISTENER_KEYS, where)
        for required in ("listen", "backend"):
            if required not in listener:
                raise ProxyConfigError(f"{where}: {required!r} is missing")
    return document, tables


def loadToml(path: str) -> ProxyConfig:
    """The configuration of a TOML file (see L{readToml}), parsed."""
    return parseConfig(*readToml(path))
