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

from tlsfast.options import HandshakeTimeout


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
    if isinstance(value, (netError.TimeoutError, netError.TCPTimedOutError, HandshakeTimeout)):
        return "timeout"
    if isinstance(value, netError.DNSLookupError):
        return "dns"
    if isinstance(value, SSL.Error):
        return "tls"
    if isinstance(value, (netError.ConnectionDone, netError.ConnectionLost)):
        return "closed"
    return "other"


class ProxyCollector:
    """
    A prometheus_client collector over one process's L{ProxyServer}: its
    listeners' counters, the expiry of the certificates they present, and
    the outcome of reloads.  It reads state the reactor mutates, so it is
    collected on the reactor thread (L{MetricsResource}).
    """

    def __init__(self, server):
        self.server = server

    def describe(self):
        return []  # collected on demand; nothing to check at registration

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        base = ["listener"]
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
            "expiry": GaugeMetricFamily("tlsfast_proxy_certificate_expiry_timestamp_seconds",
                                        "When each certificate a listener presents expires (Unix time), "
                                        "as loaded at start or at the last reload",
                                        labels=[*base, "certificate"]),
        }
        for listener in self.server.allListeners():
            stats, name = listener.stats, [listener.config.name]
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
        for listener in self.server.listeners:  # retired ones present nothing to new clients
            for path, expiry in sorted(self.server.certificateExpiry.get(listener.config.name, {}).items()):
                families["expiry"].add_metric([listener.config.name, path], expiry)
        reloads = CounterMetricFamily("tlsfast_proxy_reloads", "Reloads (SIGHUP), by result",
                                      labels=["result"])
        for result in ("success", "failure"):
            reloads.add_metric([result], self.server.reloads[result])
        yield from families.values()
        yield reloads


def processRegistry(server):
    """This process's proxy metrics plus the standard process metrics (CPU, memory, fds)."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry()
    registry.register(ProxyCollector(server))
    ProcessCollector(registry=registry)
    return registry
