"""
Counters per listener, and their Prometheus exposition.

The data path only touches plain integers (L{ListenerStats}, and the
C{bytesIn} each connection keeps anyway); a custom collector turns them
into metric families when Prometheus scrapes.  So metrics cost nothing per
chunk, and a scrape costs one pass over the open connections.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from OpenSSL import SSL
from twisted.internet import error as netError
from twisted.python.failure import Failure


@dataclass
class ListenerStats:
    """What one listener has seen since the process started (kept across reloads)."""

    connections: int = 0
    handshakes: int = 0
    handshakeFailures: Counter = field(default_factory=Counter)  # reason -> count
    backendErrors: Counter = field(default_factory=Counter)  # reason -> count
    closes: Counter = field(default_factory=Counter)  # who/what closed -> count
    # Bytes of connections already closed; open ones are added at scrape time.
    closedBytesFromClients: int = 0
    closedBytesFromBackends: int = 0


# OpenSSL reasons with a clearer name for an operator.
_RENAMED_REASONS = {"no_application_protocol": "alpn_mismatch"}  # RFC 7301 alert 120: no ALPN overlap


def _label(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split()) or "unknown"


def handshakeFailureReason(reason, timedOut: bool) -> str:
    """
    A short, bounded label for why a client's handshake failed: C{timeout},
    C{client_closed} (gone before finishing), or OpenSSL's reason
    (C{peer_did_not_return_a_certificate}, C{wrong_version_number}, ...).
    """
    if timedOut:
        return "timeout"
    value = reason.value if isinstance(reason, Failure) else reason
    if isinstance(value, SSL.Error) and value.args and isinstance(value.args[0], list) and value.args[0]:
        entry = value.args[0][-1]
        if isinstance(entry, tuple) and len(entry) == 3 and entry[2]:
            label = _label(entry[2])
            return _RENAMED_REASONS.get(label, label)
    if isinstance(value, (netError.ConnectionDone, netError.ConnectionLost)):
        return "client_closed"
    return _label(type(value).__name__)


def backendErrorReason(reason) -> str:
    """C{refused}, C{timeout}, C{dns}, C{tls} (handshake or verification), C{closed} or C{other}."""
    value = reason.value if isinstance(reason, Failure) else reason
    if isinstance(value, netError.ConnectionRefusedError):
        return "refused"
    if isinstance(value, (netError.TimeoutError, netError.TCPTimedOutError)):
        return "timeout"
    if isinstance(value, netError.DNSLookupError):
        return "dns"
    if isinstance(value, SSL.Error):
        return "tls"
    if isinstance(value, (netError.ConnectionDone, netError.ConnectionLost)):
        return "closed"
    return "other"


class ProxyCollector:
    """A prometheus_client collector over the process's listeners."""

    def __init__(self, listeners, constantLabels: dict[str, str] | None = None):
        self.listeners = listeners  # a callable returning the current Listener objects
        self.constant = dict(constantLabels or {})

    def describe(self):
        return []  # collected on demand; nothing to check at registration

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        extra = list(self.constant)
        extraValues = [self.constant[k] for k in extra]
        base = ["listener", *extra]
        families = {
            "open": GaugeMetricFamily("tlsfast_proxy_connections_open",
                                      "Client connections open now", labels=base),
            "total": CounterMetricFamily("tlsfast_proxy_connections",
                                         "Client connections accepted", labels=base),
            "handshakes": CounterMetricFamily("tlsfast_proxy_handshakes",
                                              "TLS handshakes with clients completed", labels=base),
            "failures": CounterMetricFamily("tlsfast_proxy_handshake_failures",
                                            "TLS handshakes with clients that failed, by reason",
                                            labels=[*base, "reason"]),
            "backend": CounterMetricFamily("tlsfast_proxy_backend_errors",
                                           "Backend connections that could not be made, by reason",
                                           labels=[*base, "reason"]),
            "closes": CounterMetricFamily("tlsfast_proxy_closes",
                                          "Client connections closed, by who or what ended them",
                                          labels=[*base, "by"]),
            "bytes": CounterMetricFamily("tlsfast_proxy_bytes",
                                         "Plaintext bytes relayed, by direction",
                                         labels=[*base, "direction"]),
        }
        for listener in self.listeners():
            stats, name = listener.stats, [listener.config.name, *extraValues]
            fromClients, fromBackends = stats.closedBytesFromClients, stats.closedBytesFromBackends
            for connection in list(listener.connections):
                fromClients += connection.bytesIn
                if connection.peer is not None:
                    fromBackends += connection.peer.bytesIn
            families["open"].add_metric(name, len(listener.connections))
            families["total"].add_metric(name, stats.connections)
            families["handshakes"].add_metric(name, stats.handshakes)
            for reason, count in sorted(stats.handshakeFailures.items()):
                families["failures"].add_metric([*name, reason], count)
            for reason, count in sorted(stats.backendErrors.items()):
                families["backend"].add_metric([*name, reason], count)
            for by, count in sorted(stats.closes.items()):
                families["closes"].add_metric([*name, by], count)
            families["bytes"].add_metric([*name, "client_to_backend"], fromClients)
            families["bytes"].add_metric([*name, "backend_to_client"], fromBackends)
        yield from families.values()


def serveMetrics(reactor, address: tuple[str, int], listeners, constantLabels=None):
    """
    Listen on C{address} for Prometheus scrapes (any path): this process's
    proxy metrics plus the standard process metrics (CPU, memory, fds).
    Returns the listening port.
    """
    from prometheus_client import CollectorRegistry, ProcessCollector
    from prometheus_client.twisted import MetricsResource
    from twisted.web.server import Site

    registry = CollectorRegistry()
    registry.register(ProxyCollector(listeners, constantLabels))
    ProcessCollector(registry=registry)
    host, port = address
    return reactor.listenTCP(port, Site(MetricsResource(registry=registry)), interface=host)
