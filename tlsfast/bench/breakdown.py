"""
``tlsfast bench breakdown``: where one connection's CPU time goes, by phase,
for a Twisted drop-in server, a Twisted drop-in client and the proxy.

Each subject runs in its own process pinned to one core, with its peers (a
stdlib-ssl load generator, a fixed stdlib-ssl echo server, a plain echo
backend) on the other; every connection is connect, full TLS 1.3 handshake,
1 byte each way, close.  The subject process is measured twice, in two
windows a control line on its stdin opens and closes:

  plain     its CPU time per connection, unprofiled (the true cost);
  profiled  a ``sys.setprofile`` hook counts every Python-level call (C
            functions called from Python included) and its CPU time
            (``time.process_time``), each charged to a phase.

How phases are attributed (:mod:`tlsfast.bench.phases`): a call is charged
to the phase of the innermost function on the stack named in its ``RULES``
(module file, qualified name), so a handshake driven from inside
``Port.doRead`` counts as handshake, and what those functions call inherits
their phase.  Time outside every named function (the reactor loop, socket
reads and writes, dispatch) is ``reactor/other``: the phases add up to the
profiled total by construction.  The profiler itself costs about 1 µs per call, so profiled µs are inflated
in proportion to the calls; the ``est. µs`` column scales each phase's share
of the profiled time to the plain window's CPU per connection.  The TLS
layer's receive and write paths carry the handshake *and* the 1-byte
echo's records (phase ``handshake+records``): a function cannot tell them
apart.

``python -m tlsfast.bench.breakdown child --marker MODULE:QUALNAME MODULE
[ARGS...]`` is the measured process (it runs MODULE as ``__main__``: the
drop-in server is :mod:`tlsfast.bench.server`, the client
:mod:`tlsfast.bench.handshake_client`, the proxy ``tlsfast proxy``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from tlsfast.bench.phases import PHASES, PhaseProfiler

SUBJECTS = ("server", "client", "proxy")
TOP_FUNCTIONS = 60  # the most-called functions kept with each profiled window


# ---------------------------------------------------------------------------
# the measured process

class _Marker:
    """Counts calls of one function (one per connection) by wrapping it."""

    def __init__(self, spec: str):
        self.spec, self.count, self._installed = spec, 0, False

    def install(self) -> None:
        if self._installed:
            return
        moduleName, qualname = self.spec.split(":")
        owner: Any = sys.modules.get(moduleName) or importlib.import_module(moduleName)
        *path, name = qualname.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        setattr(owner, name, counted)
        self._installed = True


def _child(args: argparse.Namespace) -> None:
    """Run ``args.module`` as ``__main__``; stdin lines ``plain`` / ``profile``
    open a window, ``stop`` closes it and prints its figures as JSON to the
    file ``args.out`` (one line per window)."""
    marker = _Marker(args.marker)
    commands: list[str] = []
    window: dict[str, Any] = {}

    def control(signum, frame) -> None:  # runs on the main thread, between events
        while commands:
            command = commands.pop(0)
            if command in ("plain", "profile"):
                marker.install()
                window.clear()
                window.update(kind=command, count=marker.count, cpu=time.process_time())
                if command == "profile":
                    window["profiler"] = PhaseProfiler()
                    window["profiler"].start()
            elif command == "stop" and window:
                profiler = window.get("profiler")
                if profiler is not None:
                    profiler.stop()
                record = {"kind": window["kind"], "connections": marker.count - window["count"],
                          "cpu_seconds": time.process_time() - window["cpu"]}
                if profiler is not None:
                    busiest = sorted(profiler.functions.items(), key=lambda item: -item[1])[:TOP_FUNCTIONS]
                    record.update(seconds=profiler.seconds, calls=profiler.calls,
                                  functions=[[phase, name, calls] for (phase, name), calls in busiest])
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                window.clear()

    def readCommands() -> None:
        for line in sys.stdin:
            commands.append(line.strip())
            os.kill(os.getpid(), signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, control)
    threading.Thread(target=readCommands, daemon=True).start()
    sys.argv = [args.module, *args.arguments]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


# ---------------------------------------------------------------------------
# the runner

@dataclass
class SubjectResult:
    subject: str
    title: str
    plain: dict = field(default_factory=dict)  # connections, cpu_seconds
    profiled: dict = field(default_factory=dict)  # connections, cpu_seconds, seconds{}, calls{}

    @property
    def plainMicroseconds(self) -> float:
        return self.plain["cpu_seconds"] / self.plain["connections"] * 1e6

    def phases(self) -> list[dict]:
        """Per connection: calls, profiled µs and estimated (unprofiled) µs by phase."""
        n = self.profiled["connections"]
        total = sum(self.profiled["seconds"].values())
        rows = []
        for phase in PHASES:
            seconds = self.profiled["seconds"][phase]
            rows.append({"phase": phase, "calls": self.profiled["calls"][phase] / n,
                         "profiled_us": seconds / n * 1e6,
                         "estimated_us": seconds / total * self.plainMicroseconds if total else 0.0})
        return rows

    def to_json(self) -> dict:
        return dict(asdict(self), plain_us_per_connection=self.plainMicroseconds,
                    phases=self.phases(),
                    profiled_total_us=sum(self.profiled["seconds"].values()) / self.profiled["connections"] * 1e6,
                    profiled_cpu_us=self.profiled["cpu_seconds"] / self.profiled["connections"] * 1e6)


TITLES = {
    "server": "Twisted drop-in server (listenSSL + CertificateOptions, tlsfast installed)",
    "client": "Twisted drop-in client (connectSSL + optionsForClientTLS, tlsfast installed)",
    "proxy": "tlsfast proxy (terminate, one worker) to a plain echo backend",
}
MARKERS = {
    "server": "twisted.internet.protocol:Factory.buildProtocol",
    "client": "__main__:_OneByte.connectionLost",
    "proxy": "tlsfast.proxy._relay:Listener.buildProtocol",
}


class _Processes:
    """Children started by one measurement, stopped together."""

    def __init__(self, env: dict, cores: tuple[int | None, int | None]):
        self.env, self.cores = env, cores
        self.started: list[subprocess.Popen] = []

    def start(self, command: list[str], onSubjectCore: bool, **kwargs) -> subprocess.Popen:
        from tlsfast.bench.runner import _pinned

        process = subprocess.Popen(command, env=self.env, start_new_session=True,
                                   preexec_fn=_pinned(self.cores[0 if onSubjectCore else 1]), **kwargs)
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                process.kill()
            process.wait()


def _readLine(process: subprocess.Popen, prefix: str, what: str, timeout: float = 30.0) -> str:
    from tlsfast.bench.runner import BenchError, _readline

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = _readline(process, end - time.monotonic())
        if not line:
            break
        if line.startswith(prefix):
            return line
    raise BenchError(f"no {prefix!r} line from the {what}")


def _freePort() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(subject: str, seconds: float, directory: str, env: dict, params,
            cores: tuple[int | None, int | None] = (0, 1)) -> SubjectResult:
    """One subject: warm up, a plain window, a profiled window."""
    from tlsfast.bench.runner import CLIENT

    me = [sys.executable, "-m", "tlsfast.bench.breakdown"]
    out = os.path.join(directory, f"{subject}.jsonl")
    ca = os.path.join(directory, "ca.pem")
    loadSeconds = str(3 * seconds + 10)
    processes = _Processes(env, cores)
    try:
        child = [*me, "child", "--marker", MARKERS[subject], "--out", out]
        if subject == "client":
            server = processes.start([sys.executable, "-m", "tlsfast.bench.server", "--stack", "asyncio",
                                      "--scenario", "echo", "--certs", directory, *params.arguments()],
                                     False, stdout=subprocess.PIPE, text=True)
            port = _readLine(server, "READY ", "stdlib echo server").split()[1]
            measured = processes.start([*child, "tlsfast.bench.handshake_client", "--stack", "tlsfast", "--port",
                                        port, "--ca", ca, "--forever", *params.arguments()],
                                       True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            _readLine(measured, "COUNTING", "drop-in client", 60.0)  # started up and warmed up
        else:
            measured, port = startServing(subject, processes, directory, params, child, stdin=subprocess.PIPE)
            processes.start([sys.executable, CLIENT, "handshake", "--port", port, "--tls", "--ca", ca,
                             "--seconds", loadSeconds], False, stdout=subprocess.DEVNULL)
        time.sleep(max(seconds, 1.0))  # warm up (and let the load generator start)
        for kind in ("plain", "profile"):
            _command(measured, kind, subject)
            time.sleep(seconds)
            _command(measured, "stop", subject)
        records = _records(out, 2)
    finally:
        processes.stop()
    result = SubjectResult(subject, TITLES[subject], records[0], records[1])
    from tlsfast.bench.runner import BenchError

    if not result.plain["connections"] or not result.profiled["connections"]:
        raise BenchError(f"breakdown {subject}: no connection completed in a window")
    return result


def startServing(subject: str, processes: _Processes, directory: str, params, wrapper: list[str] | None = None,
                 **kwargs) -> tuple[subprocess.Popen, str]:
    """
    Start a serving subject on the subject's core: C{"server"} (the Twisted
    drop-in echo server) or C{"proxy"} (the proxy, terminating TLS, with its
    plain echo backend on the other core).  C{wrapper} runs the module in
    place of C{python -m} (the breakdown's child).  Returns the process and
    the port it listens on, once it listens.
    """
    runModule = wrapper or [sys.executable, "-m"]
    if subject == "server":
        measured = processes.start([*runModule, "tlsfast.bench.server", "--stack", "tlsfast", "--scenario", "echo",
                                    "--certs", directory, *params.arguments()],
                                   True, stdout=subprocess.PIPE, text=True, **kwargs)
        return measured, _readLine(measured, "READY ", "drop-in server").split()[1]
    from tlsfast.bench.proxy import LOADGEN

    backend = processes.start([sys.executable, LOADGEN, "backend"], False, stdout=subprocess.PIPE, text=True)
    echoPort = _readLine(backend, "PORTS", "echo backend").split()[2]
    port = str(_freePort())
    logPath = os.path.join(directory, "proxy.log")
    with open(logPath, "wb") as log:  # a file: an unread pipe would stop the proxy once full
        measured = processes.start(
            [*runModule, "tlsfast", "proxy", "--listen", f"127.0.0.1:{port}", "--backend", f"127.0.0.1:{echoPort}",
             "--cert", os.path.join(directory, "server.pem"), "--key", os.path.join(directory, "server.key"),
             "--drain-timeout", "0", "--idle-timeout", "3600", "--max-connections", "100000"],
            True, stdout=log, stderr=subprocess.STDOUT, text=True, **kwargs)
    _waitListening(measured, logPath)
    return measured, port


def _command(process: subprocess.Popen, command: str, subject: str) -> None:
    """Send the measured process a control line (see :func:`_child`)."""
    from tlsfast.bench.runner import BenchError

    assert process.stdin is not None
    try:
        process.stdin.write(command + "\n")
        process.stdin.flush()
    except BrokenPipeError:
        raise BenchError(f"breakdown {subject}: the measured process exited (status {process.wait()})") from None


def _waitListening(process: subprocess.Popen, logPath: str, timeout: float = 30.0) -> None:
    """Until the proxy logs that it listens."""
    from tlsfast.bench.runner import BenchError

    end = time.monotonic() + timeout
    while time.monotonic() < end and process.poll() is None:
        with open(logPath, errors="replace") as f:
            if "event=listening" in f.read():
                return
        time.sleep(0.05)
    raise BenchError(f"the proxy did not start listening (log: {logPath})")


def _records(path: str, count: int, timeout: float = 10.0) -> list[dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            if len(lines) >= count:
                return lines[:count]
        time.sleep(0.05)
    from tlsfast.bench.runner import BenchError

    raise BenchError(f"the measured process wrote no figures to {path}")


# ---------------------------------------------------------------------------
# output and command line

def markdown(results: list[SubjectResult]) -> str:
    """The tables (one per subject) and how their phases are attributed."""
    lines = []
    for result in results:
        profiled = result.to_json()
        lines += [f"### {result.subject}: {result.title}", "",
                  f"{result.plainMicroseconds:.0f} µs CPU per connection unprofiled "
                  f"({result.plain['connections']} connections); profiled: "
                  f"{profiled['profiled_total_us']:.0f} µs attributed, {profiled['profiled_cpu_us']:.0f} µs CPU "
                  f"({result.profiled['connections']} connections)", "",
                  "| phase | Python calls | profiled µs | est. µs |", "|---|---:|---:|---:|"]
        rows = result.phases()
        for row in rows:
            lines.append(f"| {row['phase']} | {row['calls']:.0f} | {row['profiled_us']:.0f} | "
                         f"{row['estimated_us']:.0f} |")
        lines.append(f"| **total** | {sum(r['calls'] for r in rows):.0f} | "
                     f"{sum(r['profiled_us'] for r in rows):.0f} | {sum(r['estimated_us'] for r in rows):.0f} |")
        lines.append("")
    lines += ["Phases: a call is charged to the innermost function on the stack that "
              "tlsfast.bench.phases.RULES names; time outside them is reactor/other. "
              "est. µs = the phase's share of profiled time × the unprofiled CPU per connection.", ""]
    return "\n".join(lines)


def parser():
    from tlsfast._cliutil import OneLineParser

    p = OneLineParser(prog="tlsfast bench breakdown",
                      description="Per-connection CPU and Python calls by phase (accept/connect, setup, "
                                  "handshake+records, callbacks, close, reactor/other) for a Twisted drop-in "
                                  "server, a drop-in client and the proxy.")
    p.add_argument("subjects", nargs="*", metavar="SUBJECT", help=f"any of {', '.join(SUBJECTS)} (default: all)")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each window (default 2)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown")
    p.add_argument("--server-core", type=int, default=0, help="pin the measured process to this CPU")
    p.add_argument("--client-core", type=int, default=1, help="pin its peers to this CPU")
    return p


def chosenSubjects(options: argparse.Namespace, known: tuple[str, ...]
                   ) -> tuple[list[str], tuple[int | None, int | None]]:
    """The subjects named on the command line (all C{known} by default) and
    the (subject, peers) cores to pin to, where this process may use them."""
    from tlsfast._cliutil import UsageError

    subjects = options.subjects or list(known)
    unknown = sorted(set(subjects) - set(known))
    if unknown:
        raise UsageError(f"unknown subject {', '.join(unknown)} (choose from {', '.join(known)})")
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    return subjects, (options.server_core if options.server_core in cores else None,
                      options.client_core if options.client_core in cores else None)


@contextmanager
def workDirectory(prefix: str, params) -> Iterator[tuple[str, dict]]:
    """A temporary directory with the test PKI, and the environment for the
    processes run there (OpenSSL pinned to C{params}, tlsfast enabled)."""
    from tlsfast.bench.certs import write_pki
    from tlsfast.bench.tlsconfig import write_openssl_conf

    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        write_pki(directory, params.key_type)
        env = dict(os.environ, OPENSSL_CONF=write_openssl_conf(directory, params))
        env.pop("TLSFAST_DISABLE", None)
        yield directory, env


def run(options: argparse.Namespace) -> int:
    """``tlsfast bench breakdown``."""
    from tlsfast._cliutil import UsageError
    from tlsfast.bench.runner import BenchError, stop_children
    from tlsfast.bench.tlsconfig import resolve

    subjects, pinned = chosenSubjects(options, SUBJECTS)
    if options.seconds <= 0:
        raise UsageError("--seconds must be positive")
    params = resolve()
    results = []
    with workDirectory("tlsfast-breakdown-", params) as (directory, env):
        try:
            for subject in subjects:
                results.append(measure(subject, options.seconds, directory, env, params, pinned))
        except BenchError as e:
            print(f"tlsfast bench breakdown: error: {e}", file=sys.stderr)
            return e.status
        finally:
            stop_children()
    text = markdown(results)
    print(text)
    if options.markdown:
        with open(options.markdown, "w") as f:
            f.write(text)
    if options.json:
        with open(options.json, "w") as f:
            json.dump({"tls": params.to_json(), "seconds": options.seconds,
                       "subjects": [r.to_json() for r in results]}, f, indent=1)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "child":
        p = argparse.ArgumentParser(prog="breakdown child")
        p.add_argument("--marker", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("module")
        p.add_argument("arguments", nargs=argparse.REMAINDER)
        _child(p.parse_args(argv[1:]))
        return 0
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
