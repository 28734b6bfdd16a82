"""
``tlsfast proxy``: the command line, startup checks, and the process
lifecycle (listen, serve, drain on SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import gc
import sys
import warnings
from typing import Any

from tlsfast.proxy._config import (
    CLIENT_CERT_MODES,
    DEFAULT_BACKEND_HANDSHAKE_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PROXY_HEADER_TIMEOUT,
    LOG_FORMATS,
    LOG_LEVELS,
    MODES,
    PROXY_PROTOCOL_VERSIONS,
    ProxyConfig,
    ProxyConfigError,
    deprecationNote,
    parseConfig,
    readToml,
)
from tlsfast.proxy._log import Logger
from tlsfast.proxy._status import EXIT_CONFIG, EXIT_LISTEN

DESCRIPTION = """\
A TLS terminating / originating proxy on Twisted and tlsfast.

modes: terminate  TLS from clients, plain TCP to the backend
       originate  plain TCP from clients, verified TLS to the backend
       reencrypt  TLS from clients, verified TLS to the backend

One listener from the flags, or several from --config FILE.toml (see
docs/proxy.md).  Log lines (logfmt) go to stderr; each names its listener
and connection (conn=N).  SIGTERM or SIGINT: stop accepting, let open
connections finish for up to --drain-timeout seconds, then close them.
SIGHUP: read the configuration and certificates again; established
connections are kept.  --metrics HOST:PORT serves Prometheus metrics at
/metrics and /healthz (503 once draining).  --check: check the
configuration and certificates, then exit.  --user: drop root after
binding.  With NOTIFY_SOCKET set, systemd is told READY/RELOADING/STOPPING.

exit status: 0 stopped by a signal (--check: all good), 2 bad
configuration, 3 cannot listen.
"""



def addParser(commands) -> None:
    """Add the C{proxy} subcommand to an argparse subparsers object."""
    proxy = commands.add_parser("proxy", help="TLS terminating/originating proxy",
                                description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    proxy.add_argument("--config", metavar="FILE.toml", help="listeners from a TOML file (instead of the flags)")
    proxy.add_argument("--listen", metavar="HOST:PORT", help="address to accept clients on (port 0: any)")
    proxy.add_argument("--backend", metavar="HOST:PORT", help="address to relay to")
    proxy.add_argument("--mode", choices=MODES, default="terminate", help="default: terminate")
    proxy.add_argument("--cert", metavar="PEM", help="server certificate (chain; may hold the key too)")
    proxy.add_argument("--key", metavar="PEM", help="server private key")
    proxy.add_argument("--backend-ca", metavar="PEM",
                       help="CAs the backend's certificate must chain to (default: the platform's)")
    proxy.add_argument("--backend-name", metavar="NAME",
                       help="name the backend's certificate must be valid for (default: the backend host)")
    proxy.add_argument("--backend-cert", metavar="PEM",
                       help="client certificate to present to the backend (mutual TLS; may hold the key)")
    proxy.add_argument("--backend-key", metavar="PEM", help="its private key")
    proxy.add_argument("--alpn", metavar="LIST", default="",
                       help="comma-separated ALPN protocols to offer (reencrypt: the backend is offered "
                            "what the client chose)")
    proxy.add_argument("--route", metavar="NAME=HOST:PORT", action="append", default=[],
                       help="SNI routing: clients asking for NAME (or '*.domain') go to HOST:PORT; "
                            "others to --backend (repeatable)")
    proxy.add_argument("--alpn-route", metavar="PROTO=HOST:PORT", action="append", default=[],
                       help="clients that negotiated ALPN protocol PROTO go to HOST:PORT (after SNI "
                            "routes; PROTO must be in --alpn; repeatable)")
    proxy.add_argument("--sni-cert", metavar="NAME=CERT[,KEY]", action="append", default=[],
                       help="certificate for clients asking for NAME (or '*.domain'); others get --cert "
                            "(repeatable)")
    proxy.add_argument("--client-ca", metavar="PEM",
                       help="require client certificates chaining to these CAs (see --client-cert)")
    proxy.add_argument("--client-cert", choices=CLIENT_CERT_MODES, default=None,
                       help="client certificate policy (default: required with --client-ca, else none)")
    proxy.add_argument("--min-version", default="1.2", metavar="1.2|1.3",
                       help="lowest TLS version accepted from clients (default 1.2)")
    proxy.add_argument("--ciphers", metavar="STRING", help="TLS 1.2 cipher string for clients (OpenSSL syntax)")
    proxy.add_argument("--tls13-ciphers", metavar="LIST", help="TLS 1.3 suites for clients, ':'-separated")
    proxy.add_argument("--groups", metavar="LIST", help="key-exchange groups for clients, ':'-separated")
    proxy.add_argument("--proxy-protocol", choices=PROXY_PROTOCOL_VERSIONS, default=None,
                       help="send a PROXY protocol header (v1 text, v2 binary with TLS details) "
                            "to the backend first")
    proxy.add_argument("--accept-proxy", action="store_true", default=None,
                       help="every client connection starts with a PROXY protocol header (v1 or v2, "
                            "from a load balancer): its client address is used; others are closed")
    proxy.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                       help=f"stop accepting while this many are open (default {DEFAULT_MAX_CONNECTIONS})")
    proxy.add_argument("--session-tickets", type=int, default=None, metavar="N",
                       help="TLS 1.3 session tickets per handshake (default: OpenSSL's 2; 0: none, "
                            "and no TLS 1.2 tickets); every worker resumes every worker's tickets")
    proxy.add_argument("--handshake-timeout", type=float, default=None, metavar="S",
                       help=f"seconds for a client's TLS handshake (default {DEFAULT_HANDSHAKE_TIMEOUT:g}; "
                            "deprecated: those of the three below not given take its value)")
    proxy.add_argument("--connect-timeout", type=float, default=None, metavar="S",
                       help=f"seconds for the backend's TCP connect (default {DEFAULT_CONNECT_TIMEOUT:g})")
    proxy.add_argument("--backend-handshake-timeout", type=float, default=None, metavar="S",
                       help="seconds for the backend's TLS handshake, originate and reencrypt "
                            f"(default {DEFAULT_BACKEND_HANDSHAKE_TIMEOUT:g})")
    proxy.add_argument("--proxy-header-timeout", type=float, default=None, metavar="S",
                       help="--accept-proxy: seconds for a client's PROXY header to arrive "
                            f"(default {DEFAULT_PROXY_HEADER_TIMEOUT:g})")
    proxy.add_argument("--idle-timeout", type=float, metavar="S", default=DEFAULT_IDLE_TIMEOUT,
                       help=f"close a connection idle this long, seconds (default {DEFAULT_IDLE_TIMEOUT:g})")
    proxy.add_argument("--close-timeout", type=float, metavar="S", default=DEFAULT_CLOSE_TIMEOUT,
                       help="seconds a closing connection may take to flush and get the peer's close_notify, "
                            f"then it is cut (default {DEFAULT_CLOSE_TIMEOUT:g})")
    proxy.add_argument("--metrics", metavar="HOST:PORT",
                       help="serve Prometheus metrics (/metrics) and /healthz here (one port for all workers)")
    proxy.add_argument("--workers", type=int, default=None, metavar="N",
                       help="N processes sharing each listening port (SO_REUSEPORT), default 1")
    proxy.add_argument("--log-level", choices=LOG_LEVELS, default=None,
                       help="info (default): one line per connection, at its close; debug adds "
                            "accept, handshake and backend_ready lines")
    proxy.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                       help="logfmt (default): key=value lines; json: one JSON object per line")
    proxy.add_argument("--keylog", metavar="FILE",
                       help="append every TLS session's secrets to FILE (created 0600; for debugging "
                            "with Wireshark: anyone who can read it can decrypt the traffic). "
                            "SSLKEYLOGFILE is ignored")
    proxy.add_argument("--user", metavar="NAME",
                       help="started as root: become this user once the ports are open")
    proxy.add_argument("--group", metavar="NAME", help="... and this group (default: the user's)")
    proxy.add_argument("--check", action="store_true",
                       help="check the configuration and its certificates, print the problems (or OK) "
                            "and exit 0 or 2 without listening")
    proxy.add_argument("--drain-timeout", type=float, metavar="S", default=None,
                       help=f"on SIGTERM, seconds to let connections finish (default {DEFAULT_DRAIN_TIMEOUT:g})")
    proxy.set_defaults(run=run)


# Flags that describe the one listener (not allowed with --config).
_LISTENER_FLAGS = ("listen", "backend", "cert", "key", "backend_ca", "backend_name", "backend_cert", "backend_key",
                   "route", "alpn_route",
                   "sni_cert", "client_ca", "client_cert", "min_version", "ciphers", "tls13_ciphers", "groups",
                   "proxy_protocol", "accept_proxy", "session_tickets", "handshake_timeout", "connect_timeout",
                   "backend_handshake_timeout", "proxy_header_timeout")


def _pairs(values, flag, shape):
    """C{NAME=VALUE} flag values to C{(name, value)} pairs."""
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise ProxyConfigError(f"{flag} {value!r}: expected {shape}")
        yield name, rest


def configFromArgs(args: argparse.Namespace, startup: ProxyConfig | None = None) -> ProxyConfig:
    """
    The configuration, from --config or from the flags, parsed (and so
    checked).  C{startup}: a reload's, whose key log stays the process's
    (one the startup did not announce must not start on a SIGHUP).
    """
    process, listeners = settingsFromArgs(args)
    if startup is not None:
        process["keylog"] = startup.keylog
    return parseConfig(process, listeners)


# Process settings: a flag overrides the TOML key of the same name.
_PROCESS_FLAGS = ("drain_timeout", "metrics", "workers", "log_level", "user", "group", "log_format", "keylog")


def settingsFromArgs(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """
    The settings from --config or from the flags, as L{parseConfig} takes
    them: the process's, and each listener's (named as the TOML keys).
    """
    if args.config:
        given = [flag for flag in _LISTENER_FLAGS if getattr(args, flag) not in (None, [], "", "1.2")]
        if given:
            raise ProxyConfigError(f"--config cannot be combined with --{given[0].replace('_', '-')}")
        process, listeners = readToml(args.config)
    else:
        if not args.listen or not args.backend:
            raise ProxyConfigError("give --listen HOST:PORT and --backend HOST:PORT (or --config FILE)")
        sniCerts = {name: files.split(",") for name, files in _pairs(args.sni_cert, "--sni-cert", "NAME=CERT[,KEY]")}
        process, listeners = {}, [dict(
            listen=args.listen, backend=args.backend, mode=args.mode, cert=args.cert, key=args.key,
            backend_ca=args.backend_ca, backend_name=args.backend_name, backend_cert=args.backend_cert,
            backend_key=args.backend_key, alpn=args.alpn,
            routes=dict(_pairs(args.route, "--route", "NAME=HOST:PORT")),
            alpn_routes=dict(_pairs(args.alpn_route, "--alpn-route", "PROTO=HOST:PORT")),
            sni_certs=sniCerts, client_ca=args.client_ca, client_cert=args.client_cert,
            min_version=args.min_version, ciphers=args.ciphers, tls13_ciphers=args.tls13_ciphers,
            groups=args.groups, proxy_protocol=args.proxy_protocol, accept_proxy=bool(args.accept_proxy),
            max_connections=args.max_connections, session_tickets=args.session_tickets,
            handshake_timeout=args.handshake_timeout,
            connect_timeout=args.connect_timeout, backend_handshake_timeout=args.backend_handshake_timeout,
            proxy_header_timeout=args.proxy_header_timeout, idle_timeout=args.idle_timeout,
            close_timeout=args.close_timeout)]
    if args.workers is not None and args.workers < 1:
        raise ProxyConfigError("--workers must be at least 1")
    for name in _PROCESS_FLAGS:
        if getattr(args, name) is not None:
            process[name] = getattr(args, name)
    return process, listeners


def logDeprecations(config: ProxyConfig, log: Logger) -> None:
    """One warning per listener that uses a deprecated meaning of a setting."""
    for listener in config.listeners:
        note = deprecationNote(listener)
        if note is not None:
            log("warn", "deprecated", listener=listener.name, setting="handshake_timeout",
                use=",".join(listener.inheritedTimeouts), note=note)


def run(args: argparse.Namespace) -> int:
    if args.check:
        from tlsfast.proxy._check import check

        return check(args, settingsFromArgs)
    from tlsfast.proxy._privileges import resolveIdentity

    try:
        config = configFromArgs(args)
        identity = resolveIdentity(config.user, config.group)
    except ProxyConfigError as e:
        print(f"tlsfast proxy: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    log = Logger(level=config.log_level, format=config.log_format)
    logDeprecations(config, log)
    if config.keylog:
        log("warn", "keylog_enabled", path=config.keylog,
            note="TLS secrets of every connection are written there: anyone who can read it can decrypt them")

    def loadConfig():  # for SIGHUP: the same flags, files read again
        return configFromArgs(args, config)

    from tlsfast.proxy._sdnotify import Notifier

    notifier = Notifier()
    if config.workers == 1:
        return serve(config, log, loadConfig, identity=identity, notifier=notifier)
    from tlsfast.proxy._workers import supervise

    def serveWorker(index, config, log, readiness, token):
        return serve(config, log, loadConfig, worker=index, identity=identity, notifier=readiness,
                     workerGroup=(token, index, config.workers))

    return supervise(config, log, config.workers, serveWorker, config.log_level, notifier)


def serve(config: ProxyConfig, log: Logger, loadConfig=None, reactor=None, worker: int | None = None,
          identity=None, notifier=None, workerGroup: tuple[str, int, int] | None = None) -> int:
    """
    Build every listener (TLS options checked), listen, run until SIGTERM or
    SIGINT; SIGHUP reloads (C{loadConfig} returns the new configuration).
    C{worker}: this process's index among C{--workers}; its listening
    sockets are shared (SO_REUSEPORT), and so is the metrics port, which
    answers for the whole group (C{workerGroup}: token, index, count).
    C{identity}: who to become once every socket is open (C{--user}).
    C{notifier}: told when ready, reloading and stopping (sd_notify, or the
    supervisor of the workers).
    """
    import signal

    import tlsfast.twisted
    from tlsfast.options import ConfigurationError

    with warnings.catch_warnings(record=True):  # said in the log instead
        warnings.simplefilter("always", tlsfast.twisted.TLSFastUnavailableWarning)
        accelerated = tlsfast.twisted.install()
    if reactor is None:
        from tlsfast.proxy import _reactor

        _reactor.install()
        from twisted.internet import reactor
    from twisted.logger import globalLogBeginner

    from tlsfast.proxy._log import twistedObserver

    # Errors Twisted logs (an exception escaping a callback) go to our log.
    globalLogBeginner.beginLoggingTo([twistedObserver(log)], redirectStandardIO=False)

    from tlsfast.proxy._server import ListenError, ProxyServer
    from tlsfast.proxy._workers import FORWARDED_SIGNALS

    server = ProxyServer(config, reactor, log, loadConfig, reusePort=worker is not None, notifier=notifier,
                         workerGroup=workerGroup)
    try:
        server.build()
    except ConfigurationError as e:
        print(f"tlsfast proxy: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        server.listen(accelerated)
    except ListenError as e:
        print(f"tlsfast proxy: error: {e}", file=sys.stderr)
        return EXIT_LISTEN
    if identity is not None:
        from tlsfast.proxy._privileges import dropPrivileges

        try:
            dropPrivileges(identity)
        except OSError as e:
            print(f"tlsfast proxy: error: cannot become user {identity.user}: {e.strerror or e}", file=sys.stderr)
            return EXIT_CONFIG
        log("info", "privileges_dropped", user=identity.user, group=identity.group, uid=identity.uid,
            gid=identity.gid)

    if not accelerated:  # logged once the configuration is known to be good
        log("warn", "not_accelerated", reason="; ".join(tlsfast.backend_info().problems) or "disabled",
            note="stock Twisted TLS in use")
    reactor.addSystemEventTrigger("before", "shutdown", server.drain)
    # Twisted installs the SIGINT/SIGTERM handlers that stop it; SIGHUP is ours.
    signal.signal(signal.SIGHUP, lambda signum, frame: reactor.callFromThread(server.reload))

    def started() -> None:
        # Twisted's handlers are in place now ("after startup"): a worker's
        # signals, blocked since before its fork, may be delivered.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        log.flush()
        server.notifier.ready()

    reactor.addSystemEventTrigger("after", "startup", started)
    log.flushEachTurn(reactor)
    # Everything alive now (modules, classes, configuration) lives as long as
    # the process: move it out of the collector's view, so the full
    # collections that connection churn triggers do not walk it each time.
    gc.freeze()
    reactor.run()
    log.flushEachTurn(None)
    log("info", "stopped", aborted=getattr(server, "aborted", 0))
    return 0
