"""
``--workers N``: N forked processes, each one reactor, sharing every
listening port through SO_REUSEPORT (the kernel spreads new connections
across them).  The parent only supervises:

- it forks before anything imports the reactor or opens a connection;
- a listener on port 0 gets one concrete port, reserved by the parent, so
  all workers share it (the metrics port too: it answers for the group);
- SIGTERM/SIGINT are passed to every worker (each drains its own
  connections) and the parent exits when they have; SIGHUP is passed on
  (each worker reloads);
- a worker that dies is started again (after a pause if it keeps dying);
  one that fails at startup (bad configuration, cannot listen) stops the
  others and its exit status becomes the parent's;
- each worker reports on a pipe when it is ready (listening, and after each
  reload), so the parent can tell systemd READY=1 for the group.

Signals and fork: SIGTERM, SIGINT and SIGHUP are blocked from just before
each fork until the worker's reactor has installed its handlers (the worker
unblocks them then, see L{tlsfast.proxy._main.serve}).  One that arrives in
between waits, pending, and is then handled as usual: a SIGTERM is not lost
to a half-started worker, and a SIGHUP cannot kill one through the default
action.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import select
import signal
import socket
import sys
import time
from dataclasses import replace

from tlsfast._addresses import hostPort
from tlsfast.proxy._config import ProxyConfig
from tlsfast.proxy._log import Logger
from tlsfast.proxy._sockets import boundSocket
from tlsfast.proxy._status import EXIT_CONFIG, EXIT_LISTEN
from tlsfast.proxy._ticketkeys import processTicketKeys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_RESTART_PAUSE = 1.0  # seconds between restarts of a worker that died young
_YOUNG = 5.0  # a worker that dies within this many seconds of its start "died young"
FORWARDED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def _reservePorts(config: ProxyConfig) -> tuple[ProxyConfig, list[socket.socket]]:
    """
    Give each port-0 listener (and metrics port) a concrete port, held by a
    bound (not listening) socket: the configuration with those ports, and the sockets.
    """
    reserved = []

    def reserve(host: str) -> str:
        sock = boundSocket((host, 0), reusePort=True)
        reserved.append(sock)
        return hostPort(host, sock.getsockname()[1])

    listeners = tuple(replace(listener, listen=reserve(listener.listenAddress[0]))
                      if listener.listenAddress[1] == 0 else listener for listener in config.listeners)
    metrics = config.metrics
    if config.metricsAddress is not None and config.metricsAddress[1] == 0:
        metrics = reserve(config.metricsAddress[0])
    return replace(config, listeners=listeners, metrics=metrics), reserved


class WorkerReadiness:
    """A worker's side of the readiness pipe: what L{ProxyServer} tells its notifier."""

    def __init__(self, fd: int, index: int):
        self.fd = fd
        self.index = index

    def ready(self) -> None:
        try:
            os.write(self.fd, f"{self.index}\n".encode())  # < PIPE_BUF: one atomic write
        except OSError:  # the supervisor is gone
            pass

    def reloading(self) -> None:
        pass  # the supervisor said so when it passed SIGHUP on

    def stopping(self) -> None:
        pass


def _stopWithSupervisor(supervisor: int) -> None:
    """
    Have the kernel send this worker SIGTERM (a drain) when the supervisor
    dies, even by SIGKILL: otherwise the workers would keep serving the port
    with nobody to reload, restart or stop them.  Linux only (prctl).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)  # pending (blocked) until the handlers are in place


def supervise(config, log: Logger, count: int, serveWorker, level: str = "info", notifier=None) -> int:
    """
    Run C{serveWorker(index, config, log, readiness, token)} in C{count}
    processes until told to stop.  C{notifier} (sd_notify) hears READY=1
    once every worker is listening, and again once every worker has
    finished a reload.
    """
    config, reserved = _reservePorts(config)
    processTicketKeys()  # made once, here, so every worker inherits the same key
    token = secrets.token_hex(8)  # names the workers' metrics sockets
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
    state = {"stopping": False, "status": 0}
    waitingFor = set(range(count))  # workers not ready since start or the last SIGHUP
    readyRead, readyWrite = os.pipe()
    wakeRead, wakeWrite = os.pipe()  # a signal (SIGCHLD above all) wakes the loop
    os.set_blocking(readyRead, False)
    os.set_blocking(wakeRead, False)
    os.set_blocking(wakeWrite, False)

    def spawn(index: int) -> None:
        sys.stderr.flush()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        if state["stopping"]:  # a SIGTERM came while the others were being started
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            return
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker; its signals stay blocked until its handlers are in place
            status = 1
            try:
                _stopWithSupervisor(supervisor)
                signal.set_wakeup_fd(-1)
                for sock in reserved:
                    sock.close()
                for fd in (readyRead, wakeRead, wakeWrite):
                    os.close(fd)
                for signum in (*FORWARDED_SIGNALS, signal.SIGCHLD):
                    signal.signal(signum, signal.SIG_DFL)
                status = serveWorker(index, config, Logger(fields={"worker": index}, level=level, format=log.format),
                                     WorkerReadiness(readyWrite, index), token)
            finally:
                sys.stderr.flush()
                os._exit(status)
        # Known before any signal can be handled here again, so that one is passed on to it too.
        children[pid] = (index, time.monotonic())
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)

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
            if notifier is not None:
                notifier.stopping()
        forward(signal.SIGTERM)

    def onReload(signum, frame):
        log("info", "reload_workers", workers=len(children))
        if notifier is not None:
            notifier.reloading()
        waitingFor.update(index for index, _ in children.values())
        forward(signal.SIGHUP)

    def readReady() -> None:
        try:
            data = os.read(readyRead, 4096)
        except BlockingIOError:
            return
        if not waitingFor:  # e.g. a restarted worker: the group was ready already
            return
        waitingFor.difference_update(int(index) for index in data.split())
        if not waitingFor and notifier is not None and not state["stopping"]:
            notifier.ready()

    def reaped(pid: int, status: int) -> None:
        index, started = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if state["stopping"]:
            return
        if code in (EXIT_CONFIG, EXIT_LISTEN):
            log("error", "worker_failed", worker=index, status=code, note="stopping the other workers")
            state["status"] = code
            onStop(None, None)
            return
        log("warn", "worker_exited", worker=index, status=code, note="restarting it")
        if time.monotonic() - started < _YOUNG:
            time.sleep(_RESTART_PAUSE)
        if not state["stopping"]:
            spawn(index)

    signal.set_wakeup_fd(wakeWrite)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # its wakeup byte is what counts
    signal.signal(signal.SIGTERM, onStop)
    signal.signal(signal.SIGINT, onStop)
    signal.signal(signal.SIGHUP, onReload)
    log("info", "workers", count=count, pid=os.getpid())
    for index in range(count):
        spawn(index)
    while children:
        readable, _, _ = select.select([readyRead, wakeRead], [], [])
        if wakeRead in readable:
            try:
                os.read(wakeRead, 4096)
            except BlockingIOError:
                pass
        if readyRead in readable:
            readReady()
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            reaped(pid, status)
    signal.set_wakeup_fd(-1)
    for fd in (readyRead, readyWrite, wakeRead, wakeWrite):
        os.close(fd)
    for sock in reserved:
        sock.close()
    log("info", "stopped", workers=count)
    return state["status"]
