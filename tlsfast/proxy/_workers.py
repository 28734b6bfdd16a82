"""
``--workers N``: N forked processes, each one reactor, sharing every
listening port through SO_REUSEPORT (the kernel spreads new connections
across them).  The parent only supervises:

- it forks before anything imports the reactor or opens a connection;
- a listener on port 0 gets one concrete port, reserved by the parent, so
  all workers share it;
- SIGTERM/SIGINT are passed to every worker (each drains its own
  connections) and the parent exits when they have; SIGHUP is passed on
  (each worker reloads);
- a worker that dies is started again (after a pause if it keeps dying);
  one that fails at startup (bad configuration, cannot listen) stops the
  others and its exit status becomes the parent's.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from tlsfast.proxy._log import Logger

EXIT_CONFIG, EXIT_LISTEN = 2, 3
_RESTART_PAUSE = 1.0  # seconds between restarts of a worker that died young
_YOUNG = 5.0  # a worker that dies within this many seconds of its start "died young"


def _reservePorts(config) -> list[socket.socket]:
    """Give each port-0 listener a concrete port, held by a bound (not listening) socket."""
    reserved = []
    for listener in config.listeners:
        host, port = listener.listenAddress
        if port != 0:
            continue
        family, _, _, _, address = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        listener.listenAddress = (host, sock.getsockname()[1])
        reserved.append(sock)
    return reserved


def supervise(config, log: Logger, count: int, serveWorker, level: str = "info") -> int:
    """Run C{serveWorker(index, config, log)} in C{count} processes until told to stop."""
    reserved = _reservePorts(config)
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
    state = {"stopping": False, "status": 0}

    def spawn(index: int) -> None:
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                for sock in reserved:
                    sock.close()
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_DFL)
                status = serveWorker(index, config, Logger(fields={"worker": index}, level=level, format=log.format))
            finally:
                sys.stderr.flush()
                os._exit(status)
        children[pid] = (index, time.monotonic())

    def forward(signum: int) -> None:
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def onStop(signum, frame):
        if not state["stopping"]:
            state["stopping"] = True
            log("info", "stopping_workers", workers=len(children))
        forward(signal.SIGTERM)

    def onReload(signum, frame):
        log("info", "reload_workers", workers=len(children))
        forward(signal.SIGHUP)

    signal.signal(signal.SIGTERM, onStop)
    signal.signal(signal.SIGINT, onStop)
    signal.signal(signal.SIGHUP, onReload)
    log("info", "workers", count=count, pid=os.getpid())
    for index in range(count):
        spawn(index)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index, started = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if state["stopping"]:
            continue
        if code in (EXIT_CONFIG, EXIT_LISTEN):
            log("error", "worker_failed", worker=index, status=code, note="stopping the other workers")
            state["status"] = code
            onStop(None, None)
            continue
        log("warn", "worker_exited", worker=index, status=code, note="restarting it")
        if time.monotonic() - started < _YOUNG:
            time.sleep(_RESTART_PAUSE)
        if not state["stopping"]:
            spawn(index)
    for sock in reserved:
        sock.close()
    log("info", "stopped", workers=count)
    return state["status"]
