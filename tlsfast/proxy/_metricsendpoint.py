"""
The metrics port: C{/metrics} (Prometheus' text format), C{/healthz} (200
while the listeners accept, 503 once they stop), 404 elsewhere.

Imported before the proxy drops root (C{--user}): nothing here imports
lazily, as the interpreter's files may not be readable afterwards.

Everything is rendered on the reactor thread, in the request's own turn:
the collector reads counters and connection sets that the data path changes
on that thread, so reading them anywhere else could see them mid-change.
(prometheus_client's own Twisted resource hands the rendering to a thread
pool.)

With C{--workers N} there is still one metrics port.  Every worker listens
on it (C{SO_REUSEPORT}, like the proxy's own ports) and also on a private
unix socket in the abstract namespace, C{tlsfast-proxy-TOKEN-INDEX}, where
it answers with its own samples and closes.  The TOKEN is drawn at random by
the supervisor, so the group's names cannot be guessed ahead of time.  A
scrape lands on one worker; it reads every other worker's samples from those
sockets (each rendered on that worker's reactor thread, at that moment),
adds its own, gives every sample a C{worker} label and answers with the
union, plus C{tlsfast_proxy_worker_up{worker=...}} (0 for a worker that did
not answer within L{PEER_TIMEOUT}: being restarted, say).  Counters are per
worker, so a restarted worker's reset is a normal counter reset to
Prometheus; sum over C{worker} for the group's totals.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

PEER_TIMEOUT = 2.0  # seconds for another worker to answer a scrape


def peerAddress(token: str, index: int) -> str:
    """The abstract unix socket where worker C{index} of group C{token} serves its samples."""
    return f"\0tlsfast-proxy-{token}-{index}"


class MetricsResource(Resource):
    """C{/metrics} from C{exposition()} (bytes, or a Deferred of them), C{/healthz} from C{healthy()}."""

    isLeaf = True

    def __init__(self, exposition: Callable[[], bytes | defer.Deferred], healthy: Callable[[], bool]):
        super().__init__()
        self.exposition = exposition
        self.healthy = healthy

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        if request.path == b"/healthz":
            if self.healthy():
                return b"ok\n"
            request.setResponseCode(503)
            return b"not accepting connections\n"
        if request.path != b"/metrics":
            request.setResponseCode(404)
            return b"not found: see /metrics and /healthz\n"
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        body = self.exposition()
        if isinstance(body, bytes):
            return body
        finished = []
        request.notifyFinish().addBoth(finished.append)  # the client may leave before we answer

        def answer(text: bytes) -> None:
            if not finished:
                request.write(text)
                request.finish()

        body.addCallback(answer)
        return NOT_DONE_YET


def metricsSite(exposition, healthy) -> Site:
    site = Site(MetricsResource(exposition, healthy))
    site.noisy = False
    site.displayTracebacks = False
    return site


def registryText(registry) -> bytes:
    return generate_latest(registry)


class _SendSamples(Protocol):
    def __init__(self, registry):
        self.registry = registry

    def connectionMade(self):
        self.transport.write(registryText(self.registry))
        self.transport.loseConnection()


def servePeerSamples(reactor, token: str, index: int, registry):
    """Answer the other workers' requests for this worker's samples; returns the listening port."""
    return reactor.listenUNIX(peerAddress(token, index), _SamplesFactory(registry))


class _SamplesFactory(Factory):
    noisy = False

    def __init__(self, registry):
        self.registry = registry

    def buildProtocol(self, addr):
        return _SendSamples(self.registry)


class _ReadSamples(Protocol):
    def __init__(self):
        self.chunks: list[bytes] = []
        self.done: defer.Deferred = defer.Deferred()

    def dataReceived(self, data):
        self.chunks.append(data)

    def connectionLost(self, reason):
        self.done.callback(b"".join(self.chunks))


def fetchPeerSamples(reactor, token: str, index: int, timeout: float = PEER_TIMEOUT) -> defer.Deferred:
    """Worker C{index}'s exposition text, or C{None} if it does not answer in time."""
    protocol = _ReadSamples()
    connecting = connectProtocol(UNIXClientEndpoint(reactor, peerAddress(token, index), timeout=timeout), protocol)

    def connected(_):
        return protocol.done

    result = connecting.addCallback(connected)
    result.addTimeout(timeout, reactor, onTimeoutCancel=lambda *_: _abort(protocol))
    return result.addErrback(lambda failure: None)


def _abort(protocol: _ReadSamples) -> None:
    if protocol.transport is not None:
        protocol.transport.abortConnection()  # type: ignore[attr-defined]  # a TCP transport (ITCPTransport)


def mergeWorkerSamples(texts: dict[int, bytes | None]) -> bytes:
    """
    One exposition from each worker's own (C{None}: did not answer): every
    sample labelled with its worker, families of the same name joined.
    """
    families: dict[str, Metric] = {}
    up = GaugeMetricFamily("tlsfast_proxy_worker_up", "Whether the worker answered this scrape",
                           labels=["worker"])
    for index, text in sorted(texts.items()):
        up.add_metric([str(index)], 0 if text is None else 1)
        if text is None:
            continue
        for family in text_string_to_metric_families(text.decode()):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type,
                                                        family.unit)
            for sample in family.samples:
                merged.samples.append(sample._replace(labels={**sample.labels, "worker": str(index)}))

    class Merged:
        def collect(self):
            yield from families.values()
            yield up

    registry = CollectorRegistry()
    registry.register(Merged())
    return registryText(registry)


def gatherWorkerSamples(reactor, registry, token: str, index: int, count: int) -> defer.Deferred:
    """This worker's samples and every other worker's, merged (see the module docstring)."""
    own = registryText(registry)  # now, on the reactor thread
    others = {peer: fetchPeerSamples(reactor, token, peer) for peer in range(count) if peer != index}
    gathered = defer.DeferredList(list(others.values()), consumeErrors=True)

    def merge(results) -> bytes:
        texts: dict[int, bytes | None] = {peer: value for peer, (_, value) in zip(others, results, strict=True)}
        texts[index] = own
        return mergeWorkerSamples(texts)

    return gathered.addCallback(merge)
