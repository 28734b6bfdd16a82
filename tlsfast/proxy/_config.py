"""
Listener configuration: from command-line flags or a TOML file, checked
before the reactor starts, so a mistake is one line and a non-zero exit
rather than a failure at the first connection.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from dataclasses import dataclass, field, fields

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


@dataclass
class ListenerConfig:
    """One listener: where it listens, where it forwards, and how."""

    listen: str
    backend: str
    mode: str = "terminate"
    name: str = ""
    cert: str | None = None
    key: str | None = None
    backend_ca: str | None = None
    backend_name: str | None = None
    backend_cert: str | None = None  # client certificate towards the backend (mutual TLS); may hold the key
    backend_key: str | None = None
    alpn: list[str] = field(default_factory=list)
    routes: dict[str, str] = field(default_factory=dict)  # SNI name or "*.suffix" -> backend HOST:PORT
    alpn_routes: dict[str, str] = field(default_factory=dict)  # negotiated ALPN protocol -> backend
    sni_certs: dict[str, str | list[str] | tuple[str, ...]] = field(default_factory=dict)  # name -> PEM or [cert, key]
    client_ca: str | None = None
    client_cert: str | None = None  # none | optional | required (default: required with client_ca)
    min_version: str = "1.2"
    ciphers: str | None = None  # TLS 1.2 cipher string
    tls13_ciphers: str | None = None
    groups: str | None = None
    proxy_protocol: str | None = None  # v1 | v2: a PROXY header to the backend
    accept_proxy: bool = False  # clients' connections start with a PROXY header (from a balancer)
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT  # a graceful close's deadline, then both sides are aborted

    # Not a setting of its own: the process's keylog, set by ProxyConfig.check.
    keyLogFile: str | None = field(default=None, init=False, repr=False)

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

    def check(self) -> None:
        """Raise L{ProxyConfigError} naming the first problem found."""
        where = f"listener {self.name}" if self.name else "listener"
        checkTypes({f.name: getattr(self, f.name) for f in fields(self) if f.init}, LISTENER_KEYS, where)
        self.listenAddress = parseAddress(self.listen, f"{where}: listen address")
        self.backendAddress = parseAddress(self.backend, f"{where}: backend address")
        if self.backendAddress[1] == 0:
            raise ProxyConfigError(f"{where}: backend port must not be 0")
        if TLS_FRONT[self.mode]:
            if not self.cert:
                raise ProxyConfigError(f"{where}: mode {self.mode} needs a certificate (--cert)")
        elif self.cert or self.key:
            raise ProxyConfigError(f"{where}: mode {self.mode} does not use --cert/--key (no TLS towards clients)")
        if TLS_BACK[self.mode]:
            if not self.backend_name:
                host = self.backendAddress[0]
                try:
                    ipaddress.ip_address(host)
                except ValueError:
                    self.backend_name = host
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
            self.routeTable: ServerNameMap[tuple[str, int]] = ServerNameMap(routes)
        except InvalidServerName as e:
            raise ProxyConfigError(f"{where}: route: {e} (a server name, or '*.' and a domain)") from None
        if isinstance(self.alpn, str):
            self.alpn = [p for p in self.alpn.split(",") if p]
        self._checkFrontTLS(where)
        self.alpnRouteAddresses = {}
        for protocol, address in self.alpn_routes.items():
            if protocol not in self.alpn:
                raise ProxyConfigError(f"{where}: ALPN route {protocol!r}: the listener does not offer it "
                                       f"(--alpn is {','.join(self.alpn) or 'empty'})")
            self.alpnRouteAddresses[protocol] = parseAddress(address, f"{where}: ALPN route {protocol!r}")
        for host, _ in {self.backendAddress, *self.routeTable.values(), *self.alpnRouteAddresses.values()}:
            _checkResolves(host, where)

    def _checkFrontTLS(self, where: str) -> None:
        """The settings of TLS towards clients: only with TLS there, files that exist."""
        front = {"client_ca": self.client_ca, "sni_certs": self.sni_certs, "alpn_routes": self.alpn_routes,
                 "ciphers": self.ciphers, "tls13_ciphers": self.tls13_ciphers, "groups": self.groups,
                 "client_cert": self.client_cert if self.client_cert not in (None, "none") else None}
        if not TLS_FRONT[self.mode]:
            given = [name for name, value in front.items() if value]
            if given or self.min_version != "1.2":
                flag = (given or ["min_version"])[0].replace("_", "-")
                raise ProxyConfigError(f"{where}: {flag} needs TLS from clients (mode terminate or reencrypt)")
            return
        if self.client_cert is None:
            self.client_cert = "required" if self.client_ca else "none"
        if self.client_cert != "none" and not self.client_ca:
            raise ProxyConfigError(f"{where}: client-cert {self.client_cert} needs --client-ca "
                                   "(the CAs client certificates must chain to)")
        if self.client_ca is not None and not os.path.isfile(self.client_ca):
            raise ProxyConfigError(f"{where}: client-ca file {self.client_ca!r} does not exist")
        checked: dict[str, str | list[str] | tuple[str, ...]] = {}
        for name, files in self.sni_certs.items():
            try:
                normalizePattern(name)  # ServerOptions would refuse it too, less precisely
            except InvalidServerName as e:
                raise ProxyConfigError(f"{where}: sni-cert: {e}") from None
            files = [files] if isinstance(files, str) else list(files)
            if not 1 <= len(files) <= 2:
                raise ProxyConfigError(f"{where}: sni-cert {name!r}: a certificate file, or [cert, key]")
            for path in files:
                if not os.path.isfile(path):
                    raise ProxyConfigError(f"{where}: sni-cert {name!r}: file {path!r} does not exist")
            checked[name] = tuple(files) if len(files) == 2 else files[0]
        self.sni_certs = checked


@dataclass
class ProxyConfig:
    """All listeners of one proxy process."""

    listeners: list[ListenerConfig]
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    metrics: str | None = None  # HOST:PORT for Prometheus scrapes
    # Process settings, read at start (flags override them; a reload keeps them).
    workers: int = 1
    log_level: str = "info"
    user: str | None = None  # drop root to this user after binding
    group: str | None = None  # ... and this group (default: the user's)
    log_format: str = "logfmt"  # or json
    keylog: str | None = None  # NSS key log of every TLS session (debugging only)

    def check(self) -> None:
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "listeners"}
        checkTypes(settings, PROXY_KEYS, "config")
        if not self.listeners:
            raise ProxyConfigError("no listener configured")
        self.metricsAddress = parseAddress(self.metrics, "metrics address") if self.metrics else None
        names = set()
        for index, listener in enumerate(self.listeners):
            listener.name = listener.name or f"l{index}"
            if listener.name in names:
                raise ProxyConfigError(f"listener name {listener.name!r} is used twice")
            names.add(listener.name)
            listener.keyLogFile = self.keylog
            listener.check()


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
    "handshake_timeout": seconds(),
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


def loadToml(path: str) -> ProxyConfig:
    """
    Read a TOML file::

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
    listeners = []
    for index, listener in enumerate(tables):
        name = listener.get("name")
        where = f"config file {path!r}: listener {name if isinstance(name, str) and name else index}"
        checkTypes(listener, LISTENER_KEYS, where)
        for required in ("listen", "backend"):
            if required not in listener:
                raise ProxyConfigError(f"{where}: {required!r} is missing")
        listeners.append(ListenerConfig(**listener))
    return ProxyConfig(listeners, **document)
