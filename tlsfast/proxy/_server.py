"""
One proxy process (a worker): its listeners, the metrics endpoint, reload
on SIGHUP and the drain on shutdown.

Reload: the configuration is read and every listener's TLS options are
built first; only if all of that succeeds is anything changed.  A listener
whose address and mode stay the same is updated in place (new connections
get the new certificates, routes and limits; established ones carry on).
Others are started, or stopped (their open connections finish on their
own).  A failed reload changes nothing and says why in the log.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads

from tlsfast.options import ConfigurationError
from tlsfast.proxy import _eager
from tlsfast.proxy._certificates import expiryTimestamps
from tlsfast.proxy._config import ProxyConfigError
from tlsfast.proxy._eager import useEagerServers
from tlsfast.proxy._relay import Listener, ListenerTLS
from tlsfast.proxy._sockets import boundSocket


class ListenError(Exception):
    """A listening socket could not be opened; the message says where and why."""


def listenSocket(reactor, address: tuple[str, int], factory, reusePort: bool, backlog: int = 1024):
    """
    Listen on C{address} with our own socket (so SO_REUSEPORT can be set for
    workers sharing the port) and hand it to the reactor.
    """
    try:
        sock = boundSocket(address, reusePort)
    except socket.gaierror as e:
        raise ListenError(f"cannot resolve {address[0]!r}: {e.strerror}") from None
    except OSError as e:
        raise ListenError(e.strerror or str(e)) from None
    try:
        sock.listen(backlog)
        sock.setblocking(False)
        port = reactor.adoptStreamPort(sock.fileno(), sock.family, factory)  # dups the descriptor
        useEagerServers(port)
        return port
    except OSError as e:
        raise ListenError(e.strerror or str(e)) from None
    finally:
        sock.close()


def _sameSocket(old: Listener, config) -> bool:
    """Can C{config} be applied to C{old}'s listening socket? (port 0 matches what it got)"""
    host, port = config.listenAddress
    oldHost, oldPort = old.config.listenAddress
    bound = old.port.getHost().port if old.port is not None else None
    # Port 0 ("any") is satisfied by whatever port the socket has: with --workers, the
    # supervisor has replaced the 0 of the first configuration by the port it reserved.
    return (host == oldHost and port in (0, oldPort, bound) and old.config.mode == config.mode
            and old.config.accept_proxy == config.accept_proxy)


class _NoNotifier:
    """Where nobody waits for readiness (no service manager, no supervisor)."""

    def ready(self) -> None:
        pass

    def reloading(self) -> None:
        pass

    def stopping(self) -> None:
        pass


# The life of a proxy process as /healthz reports it: event -> {state: next state}.
STARTING, SERVING, DRAINING = "starting", "serving", "draining"
_TRANSITIONS = {
    "listening": {STARTING: SERVING},
    "drain": {STARTING: DRAINING, SERVING: DRAINING},
}


class ProxyServer:
    """
    The listeners of one process and what happens to them over its life.

    C{notifier} is told when the process is ready, reloading and stopping
    (systemd's sd_notify, or the C{--workers} supervisor).  C{workerGroup}
    is C{(token, index, count)} for a worker of C{--workers}: its metrics
    endpoint answers for the whole group (see L{_metricsendpoint}).
    """

    def __init__(self, config, reactor, log, loadConfig=None, reusePort=False, notifier=None,
                 workerGroup: tuple[str, int, int] | None = None):
        self.config = config
        self.reactor = reactor
        self.log = log
        self.loadConfig = loadConfig  # () -> checked ProxyConfig, for reload
        self.reusePort = reusePort
        self.notifier = notifier or _NoNotifier()
        self.workerGroup = workerGroup
        self.state = STARTING
        self.listeners: list[Listener] = []
        self.retired: list[Listener] = []  # removed by a reload, connections still open
        self.metricsPort: Any = None  # an IListeningPort
        self.peerPort: Any = None  # --workers: where the other workers read this one's samples
        self.reloading = False
        self.reloadAgain = False  # a SIGHUP came during a reload: read the files once more after it
        self.reloads: Counter = Counter()  # "success" / "failure" -> count
        self.certificateExpiry: dict[str, dict[str, float]] = {}  # listener -> certificate file -> expiry

    def _transition(self, event: str) -> None:
        self.state = _TRANSITIONS[event].get(self.state, self.state)

    @property
    def accepting(self) -> bool:
        """What /healthz answers: are the listeners up?"""
        return self.state == SERVING

    # -- start --------------------------------------------------------------------

    def build(self) -> None:
        """Every listener's TLS options (raises ConfigurationError: nothing is listening yet)."""
        for listenerConfig in self.config.listeners:
            try:
                self.listeners.append(Listener(listenerConfig, self.reactor, self.log))
            except ConfigurationError as e:
                raise ConfigurationError(f"listener {listenerConfig.name}: {e}") from None
            self.certificateExpiry[listenerConfig.name] = expiryTimestamps(listenerConfig)

    def listen(self, accelerated: bool) -> None:
        """Open the metrics endpoint, then every listening socket (raises ListenError)."""
        if self.config.metricsAddress is not None:  # first: a failure here leaves nothing half-started
            self._listenMetrics()
        for listener in self.listeners:
            try:
                self._listen(listener, accelerated)
            except ListenError:
                self.stopListening()
                self._stopMetrics()
                raise
        self._transition("listening")
        if self.metricsPort is not None:
            address = self.metricsPort.getHost()
            self.log("info", "metrics", address=f"{address.host}:{address.port}")

    def _listenMetrics(self) -> None:
        from tlsfast.proxy import _metricsendpoint as endpoint
        from tlsfast.proxy._metrics import processRegistry

        registry = processRegistry(self)
        exposition: Callable[[], bytes | defer.Deferred] = partial(endpoint.registryText, registry)
        if self.workerGroup is not None:
            token, index, count = self.workerGroup
            exposition = partial(endpoint.gatherWorkerSamples, self.reactor, registry, token, index, count)
        site = endpoint.metricsSite(exposition, lambda: self.accepting)
        try:
            self.metricsPort = listenSocket(self.reactor, self.config.metricsAddress, site, self.reusePort)
        except ListenError as e:
            raise ListenError(f"metrics: cannot listen on {self.config.metrics}: {e}") from None
        if self.workerGroup is not None:
            from twisted.internet.error import CannotListenError

            try:
                self.peerPort = endpoint.servePeerSamples(self.reactor, token, index, registry)
            except CannotListenError as e:  # the group's endpoint goes on without this worker's samples
                self.log("warn", "metrics_peer_failed", error=str(e.socketError))

    def _listen(self, listener: Listener, accelerated: bool) -> None:
        try:
            listener.port = listenSocket(self.reactor, listener.config.listenAddress, listener.wrapped(),
                                         self.reusePort)
        except ListenError as e:
            raise ListenError(f"listener {listener.config.name}: cannot listen on "
                              f"{listener.config.listen}: {e}") from None
        address = listener.port.getHost()
        self.log("info", "listening", listener=listener.config.name, mode=listener.config.mode,
                 address=f"{address.host}:{address.port}", backend=listener.config.backend,
                 accelerated=accelerated, eager_writes=_eager.AVAILABLE,
                 reactor=type(self.reactor).__name__)

    def allListeners(self) -> list[Listener]:
        self.retired = [listener for listener in self.retired if listener.connections]
        return [*self.listeners, *self.retired]

    def stopListening(self) -> list:
        """Stop accepting everywhere; the Deferreds fire once the sockets are closed."""
        stopped: list[defer.Deferred] = []
        for listener in self.listeners:
            listener.stopping = True
            if listener.port is not None:
                stopped.append(defer.maybeDeferred(listener.port.stopListening))
        return stopped

    def _stopMetrics(self) -> None:
        for port in (self.metricsPort, self.peerPort):
            if port is not None:
                port.stopListening()
        self.metricsPort = self.peerPort = None

    # -- reload (SIGHUP) -------------------------------------------------------------

    @defer.inlineCallbacks
    def reload(self):
        """
        Read the configuration again (SIGHUP).  One that arrives during a
        reload is not lost: the files are read once more after it.
        """
        if self.loadConfig is None:
            return
        if self.reloading:
            self.reloadAgain = True
            return
        self.reloading = True
        self.notifier.reloading()
        try:
            while True:
                self.reloadAgain = False
                yield self._reload()
                if not self.reloadAgain:
                    break
        finally:
            self.reloading = False
            self.log.flush()  # what the reload did is in the log before anyone hears it is done
            self.notifier.ready()

    def _loadConfigOffThread(self) -> defer.Deferred:
        """
        C{loadConfig()} in the reactor's thread pool: checking that backend
        names resolve (getaddrinfo) blocks, and the reactor must go on
        relaying meanwhile.  A reactor without threads (a test's Clock)
        loads in line.
        """
        if not IReactorThreads.providedBy(self.reactor):
            return defer.maybeDeferred(self.loadConfig)
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self.loadConfig)

    @defer.inlineCallbacks
    def _reload(self):
        self.log("info", "reloading")
        try:
            config = yield self._loadConfigOffThread()
            plans = []
            for listenerConfig in config.listeners:
                try:
                    plans.append((listenerConfig, ListenerTLS(listenerConfig, self.reactor)))
                except ConfigurationError as e:
                    raise ProxyConfigError(f"listener {listenerConfig.name}: {e}") from None
        except ProxyConfigError as e:
            self.log("error", "reload_failed", error=str(e), note="the previous configuration stays")
            self.reloads["failure"] += 1
            return
        import tlsfast

        current = {listener.config.name: listener for listener in self.listeners}
        kept, added, updated = [], [], []
        for listenerConfig, tls in plans:
            old = current.pop(listenerConfig.name, None)
            if old is not None and _sameSocket(old, listenerConfig):
                old.update(listenerConfig, tls)
                kept.append(old)
                updated.append(listenerConfig.name)
            else:
                if old is not None:  # moved or changed mode: a new socket
                    current[listenerConfig.name + "\0old"] = old
                added.append(Listener(listenerConfig, self.reactor, self.log, tls))
        removed = list(current.values())
        for listener in removed:
            listener.stopping = True
            if listener.port is not None:
                yield defer.maybeDeferred(listener.port.stopListening)
            self.log("info", "listener_stopped", listener=listener.config.name,
                     open_connections=len(listener.connections))
        self.retired += [listener for listener in removed if listener.connections]
        started, failed = [], False
        for listener in added:
            try:
                self._listen(listener, tlsfast.ACCELERATED)
                started.append(listener)
            except ListenError as e:
                self.log("error", "reload_failed", error=str(e))
                failed = True
        self.listeners = kept + started
        self.config = config
        self.certificateExpiry = {listener.config.name: expiryTimestamps(listener.config)
                                  for listener in self.listeners}
        self.reloads["failure" if failed else "success"] += 1
        self.log("info", "reloaded", updated=",".join(updated) or None,
                 added=",".join(listener.config.name for listener in started) or None,
                 removed=",".join(listener.config.name for listener in removed) or None)

    # -- drain (SIGTERM) ----------------------------------------------------------------

    def drain(self):
        """
        Stop accepting, wait for open connections up to the deadline, then
        cut them.  The metrics endpoint stays up meanwhile (/healthz: 503).
        """
        self._transition("drain")
        self.notifier.stopping()
        self.stopListening()
        listeners = self.allListeners()
        for listener in listeners:
            listener.stopping = True
            listener.abortAwaitingHeader()  # nothing relayed yet: nothing to drain

        def openConnections():
            return [c for listener in listeners for c in listener.connections]

        self.log("info", "draining", connections=len(openConnections()), timeout=self.config.drain_timeout)
        done = defer.Deferred()
        deadline = self.reactor.seconds() + self.config.drain_timeout
        for connection in openConnections():
            connection.drain(deadline)  # each aborts itself at the deadline (its lifecycle's DRAIN_DEADLINE)
        self.aborted = None

        def check():
            remaining = openConnections()
            now = self.reactor.seconds()
            if now >= deadline and self.aborted is None:
                self.aborted = len(remaining)
                if remaining:
                    self.log("warn", "drain_timeout", aborting=len(remaining))
            # Aborted connections are gone a reactor turn later; the grace is for a bug not to hang shutdown.
            if not remaining or now >= deadline + 1.0:
                self.aborted = self.aborted or 0
                done.callback(None)
            else:
                self.reactor.callLater(min(0.05, max(deadline - now, 0.01)), check)

        check()
        return done
