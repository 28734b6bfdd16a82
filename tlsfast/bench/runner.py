"""
Orchestration of ``tlsfast bench``: every stack's server in its own process
on one core, the load generator on another, stacks interleaved within each
repetition (the order rotates from one repetition to the next); the figure of
merit is the server process's CPU time per operation (its CPU-time clock,
``clock_getcpuclockid``; /proc as a fallback), which
stays steady where rates swing 2-3x.  The ``engine`` scenario runs the
in-memory contenders of :mod:`tlsfast.bench.engine` in one child process.

Every child gets the per-run ``OPENSSL_CONF`` (cipher suite and group, see
:mod:`tlsfast.bench.tlsconfig`) and its own session, so a Ctrl-C reaches only
this process, which then stops all of them (:func:`stop_children`).

The command line is :mod:`tlsfast.bench.cli` (``python -m tlsfast.bench ARGS``
is ``tlsfast bench ARGS``); this module does not import it.
"""

from __future__ import annotations

import json
import math
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tlsfast.bench.certs import write_pki
from tlsfast.bench.engine import CONTENDERS as ENGINE_STACKS
from tlsfast.bench.engine import total_for
from tlsfast.bench.tlsconfig import (
    DEFAULT_CIPHER,
    DEFAULT_GROUP,
    TLSParams,
    mismatches,
    stdlib_knows_group,
    write_openssl_conf,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
# started by path: a load generator need not import tlsfast (and pyOpenSSL) first
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "client.py")
SCENARIOS = ("bulk", "echo", "handshake", "handshake-client", "engine")
EXTRA_SCENARIOS = ("idle",)  # memory per idle connection; only when asked for
STACKS = ("tcp", "twisted", "tlsfast", "asyncio", "uvloop", "c")
LOOPBACK_STACKS = ("tcp", "twisted", "tlsfast", "asyncio", "uvloop")
BASELINE = "twisted"
TARGET = "target"  # --target HOST:PORT, in the echo and handshake scenarios
TARGET_SCENARIOS = ("echo", "handshake")
LATENCY_PERCENTILES = ("p50", "p99", "p99.9")  # client.PERCENTILES
# stacks whose TLS is stdlib ssl, i.e. the system OpenSSL (the load generator's too)
STDLIB_STACKS = ("asyncio", "uvloop")
STACK_LABELS = {
    "tcp": "plain TCP (Twisted, no TLS)", "twisted": "stock Twisted TLS",
    "tlsfast": "Twisted + tlsfast", "asyncio": "asyncio + stdlib ssl",
    "uvloop": "uvloop + stdlib ssl", "c": "C reference loop",
}


def size_label(size: int) -> str:
    """64 -> "64 B", 16384 -> "16 KiB"."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


class BenchError(RuntimeError):
    """A failure worth one line to the user (exit status in ``status``)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------
# results

@dataclass
class Sample:
    stack: str
    ops: float
    seconds: float
    cpu_seconds: float
    rep: int = 0
    resumed: int | None = None  # handshakes: how many of ``ops`` were resumptions
    latency_us: dict[str, float] | None = None  # echo, handshake: p50/p99/p99.9 per operation, µs

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu_seconds / self.ops * 1e6 if self.ops else float("nan")

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else float("nan")


@dataclass
class Result:
    key: str  # "echo", "handshake-resumed", "engine-64", ...
    scenario: str
    title: str
    unit: str
    cpu_label: str  # whose CPU time is counted
    params: dict = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    negotiated: dict = field(default_factory=dict)  # stack -> {cipher, group, version, mtls}
    notes: list[str] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)  # stack -> why its row is marked

    def flag(self, stack: str, why: str) -> None:
        self.flags.setdefault(stack, []).append(why)

    def check_negotiated(self, params: TLSParams) -> None:
        """Flag every stack that negotiated something other than ``params``."""
        for stack, negotiated in self.negotiated.items():
            for difference in mismatches(params, negotiated):
                self.flag(stack, f"negotiated {difference}")

    def stacks(self) -> list[str]:
        """The stacks measured, in the canonical order (not the rotated one)."""
        present = {s.stack for s in self.samples}
        return [s for s in STACKS if s in present] + sorted(present.difference(STACKS))

    def summary(self) -> dict:
        out: dict[str, dict[str, Any]] = {}
        for stack in self.stacks():
            cpu = [s.cpu_us_per_op for s in self.samples if s.stack == stack]
            rate = [s.rate for s in self.samples if s.stack == stack]
            out[stack] = {
                "n": len(cpu),
                "cpu_us_per_op_median": statistics.median(cpu),
                "cpu_us_per_op_min": min(cpu), "cpu_us_per_op_max": max(cpu),
                "rate_median": statistics.median(rate), "rate_min": min(rate), "rate_max": max(rate),
            }
            latencies = [s.latency_us for s in self.samples if s.stack == stack and s.latency_us]
            for name in LATENCY_PERCENTILES if latencies else ():
                # the median over repetitions of each repetition's percentile
                out[stack][f"latency_{name}_us"] = statistics.median(lat[name] for lat in latencies)
        base = out.get(BASELINE)
        for row in out.values():
            row["rate_vs_twisted"] = row["rate_median"] / base["rate_median"] if base else None
            row["cpu_vs_twisted"] = (row["cpu_us_per_op_median"] / base["cpu_us_per_op_median"]
                                     if base and base["cpu_us_per_op_median"] else None)
        return out

    @classmethod
    def from_json(cls, data: dict) -> Result:
        """The inverse of :meth:`to_json` (the summary is recomputed)."""
        return cls(data["key"], data["scenario"], data["title"], data["unit"], data["cpu"],
                   data.get("params", {}), [Sample(**sample) for sample in data["samples"]],
                   data.get("negotiated", {}), data.get("notes", []), data.get("flags", {}))

    def to_json(self) -> dict:
        return {"key": self.key, "scenario": self.scenario, "title": self.title, "unit": self.unit,
                "cpu": self.cpu_label, "params": self.params, "negotiated": self.negotiated,
                "notes": self.notes, "flags": self.flags, "summary": self.summary(),
                "samples": [asdict(s) for s in self.samples]}


# ---------------------------------------------------------------------------
# child processes

_CHILDREN: set[subprocess.Popen] = set()


def _spawn(command: list[str], env: dict, core: int | None, **kwargs) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, start_new_session=True,
                               preexec_fn=_pinned(core), **kwargs)
    _CHILDREN.add(process)
    return process


def _reap(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    _CHILDREN.discard(process)


def stop_children() -> None:
    """Kill every child this module started and is still tracking."""
    for process in list(_CHILDREN):
        _reap(process)


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the bench process dies, however it dies
    (children run in their own session, so nothing else would stop a server)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pinned(core: int | None):
    """What a child runs before exec: die with the parent, pin to ``core``."""
    if core is None or not hasattr(os, "sched_setaffinity") or core not in os.sched_getaffinity(0):
        return _die_with_parent

    def setup() -> None:
        _die_with_parent()
        os.sched_setaffinity(0, {core})

    return setup


def _process_clock(pid: int) -> int | None:
    """The CPU-time clock of another process (nanosecond resolution; /proc's
    utime + stime count in 10 ms ticks, too coarse for a short bulk run)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        clock = ctypes.c_int()
        if libc.clock_getcpuclockid(pid, ctypes.byref(clock)) == 0:
            return clock.value
    except (OSError, AttributeError):
        pass
    return None


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) used so far by process ``pid``."""
    clock = _process_clock(pid)
    if clock is not None:
        try:
            return time.clock_gettime(clock)
        except OSError:
            pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _readline(process: subprocess.Popen, timeout: float) -> str:
    assert process.stdout is not None  # spawned with stdout=PIPE
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if ready else ""


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port (as the servers do,
    with SO_REUSEADDR, so connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Target:
    """An outside TLS server (``--target HOST:PORT``), measured with the same
    load generator as ours; its CPU time is not ours to read (NaN)."""

    stack = TARGET

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.pid: int | None = None
        self.negotiated: dict = {}

    def wait_ready(self, timeout: float = 10.0) -> None:
        try:
            socket.create_connection((self.host, self.port), timeout=timeout).close()
        except OSError as e:
            raise BenchError(f"cannot connect to the target {self.host}:{self.port}: {e.strerror or e}", 3) from None

    def stop(self) -> None:
        pass


class Server:
    """One server process: ``READY <port>`` on start, ``NEGOTIATED`` after a handshake."""

    host = "127.0.0.1"

    def __init__(self, run: Run, stack: str, scenario: str, port: int, on_client_core: bool = False):
        self.stack = stack
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = _spawn(
            [sys.executable, "-m", "tlsfast.bench.server", "--stack", stack, "--scenario", scenario,
             "--certs", run.directory, "--port", str(port), *run.params.arguments()],
            run.env, run.client_core if on_client_core else run.server_core,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.port: int | None = None
        self.negotiated: dict = {}

    def wait_ready(self, timeout: float = 60.0) -> None:
        line = _readline(self.process, timeout)
        if line.startswith("READY "):
            self.port = int(line.split()[1])
            return
        _reap(self.process)
        if line.startswith("ERROR "):
            raise BenchError(f"{self.stack} server: {line[6:].strip()}", 3)
        self.stderr.seek(0)
        tail = self.stderr.read().strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"{self.stack} server did not start: {tail[0]}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        _reap(self.process)
        assert self.process.stdout is not None  # spawned with stdout=PIPE
        for line in self.process.stdout.read().splitlines():
            if line.startswith("NEGOTIATED "):
                self.negotiated = json.loads(line[len("NEGOTIATED "):])
        self.process.stdout.close()
        self.stderr.close()


# ---------------------------------------------------------------------------
# one run

@dataclass
class Settings:
    scenarios: list[str]
    stacks: list[str]
    reps: int = 5
    seconds: float = 2.0
    size: int = 64
    connections: int = 1
    megabytes: int = 256
    write_size: int = 64 * 1024
    resume: bool = True
    engine_sizes: list[int] = field(default_factory=lambda: [64, 1024, 16384, 65536])
    engine_seconds: float = 30.0
    engine_rounds: int = 200
    idle_connections: int = 1000
    target: tuple[str, int] | None = None  # --target HOST:PORT
    target_ca: str | None = None  # verify the target's certificate against these CAs (default: no check)
    target_name: str | None = None  # the name to send (SNI) and check (default: the target's host)
    sizes: list[int] | None = None  # --sizes: echo message / bulk write sizes to sweep
    conns: list[int] | None = None  # --conns: connection counts to sweep
    cipher: str = DEFAULT_CIPHER  # OpenSSL's names (tlsconfig.resolve)
    group: str = DEFAULT_GROUP
    tls_version: str = "1.3"
    key_type: str = "ecdsa-p256"
    mtls: bool = False
    port: int = 0  # 0: any free port; else stack i listens on port + i
    server_core: int | None = 0
    client_core: int | None = 1


    @property
    def tls(self) -> TLSParams:
        return TLSParams(self.tls_version, self.cipher, self.group, self.key_type, self.mtls)


Progress = Callable[..., None]


def _no_progress(event: str, **info) -> None:
    pass


class Run:
    """One ``tlsfast bench`` run; ``results`` fills as samples arrive, so it
    holds what was measured so far when the run is interrupted."""

    def __init__(self, settings: Settings, progress: Progress = _no_progress):
        self.settings = settings
        self.progress = progress
        self.results: list[Result] = []
        self.params = settings.tls
        # stack or "load generator" -> why it cannot run with these parameters
        self.unavailable: dict[str, str] = {}
        loopback = any(scenario != "engine" for scenario in settings.scenarios)
        stdlib_stacks = [stack for stack in STDLIB_STACKS if stack in settings.stacks]
        if (loopback or stdlib_stacks) and not stdlib_knows_group(self.params.group):
            import ssl

            why = f"stdlib ssl's {ssl.OPENSSL_VERSION} does not implement the group {self.params.group}"
            for stack in stdlib_stacks:
                self.unavailable[stack] = why
            if loopback:  # the load generator is stdlib ssl too
                self.unavailable["load generator"] = why + ": loopback scenarios skipped"
        self.server_core, self.client_core = settings.server_core, settings.client_core
        self.directory = ""
        self.env: dict = {}

    # planning ---------------------------------------------------------------
    def stacks_for(self, scenario: str) -> list[str]:
        """The stacks that run in ``scenario`` with these parameters."""
        if scenario != "engine" and "load generator" in self.unavailable:
            return []
        allowed = ENGINE_STACKS if scenario == "engine" else LOOPBACK_STACKS
        stacks = [s for s in self.settings.stacks if s in allowed and s not in self.unavailable]
        return stacks + ([TARGET] if self.settings.target and scenario in TARGET_SCENARIOS else [])

    @staticmethod
    def resumable(stacks: list[str]) -> list[str]:
        """The stacks measured with resumed handshakes: TLS ones we serve (a
        target gets connect-handshake-close, which reads no TLS 1.3 ticket)."""
        return [stack for stack in stacks if stack not in ("tcp", TARGET)]

    def points(self, scenario: str) -> list[tuple[str, int, int, dict | None]]:
        """The measurement points of a loopback scenario: (key suffix, size,
        connections, sweep).  ``size`` is the echo message size or the bulk
        write size; --sizes sweeps it (not in handshake) at --connections,
        --conns sweeps the connection count at --size/--write-size."""
        s = self.settings
        size = s.write_size if scenario == "bulk" else s.size
        points: list[tuple[str, int, int, dict | None]] = []
        if s.sizes and scenario in ("bulk", "echo"):
            points += [(f" size={v}", v, s.connections, {"axis": "size", "value": v}) for v in s.sizes]
        if s.conns:
            points += [(f" conns={c}", size, c, {"axis": "connections", "value": c}) for c in s.conns]
        return points or [("", size, s.connections, None)]

    def planned_steps(self) -> int:
        s = self.settings
        steps = 0
        for scenario in s.scenarios:
            n = len(self.stacks_for(scenario))
            if scenario == "engine":
                steps += s.engine_rounds * n * len(s.engine_sizes)
            elif scenario == "handshake-client":
                from tlsfast.bench.handshake_client import RESUMABLE as CLIENT_RESUMABLE

                steps += s.reps * (n + (len([x for x in self.stacks_for(scenario) if x in CLIENT_RESUMABLE])
                                        if s.resume else 0))
            elif scenario == "handshake" and s.resume:
                steps += s.reps * (n + len(self.resumable(self.stacks_for(scenario)))) * len(
                    self.points(scenario))
            elif scenario == "idle":
                steps += s.reps * n
            else:
                steps += s.reps * n * len(self.points(scenario))
        return steps

    # running ----------------------------------------------------------------
    def run(self) -> list[Result]:
        with tempfile.TemporaryDirectory(prefix="tlsfast-bench-") as directory:
            self.directory = directory
            write_pki(directory, self.params.key_type)
            self.env = dict(os.environ, OPENSSL_CONF=write_openssl_conf(directory, self.params))
            try:
                for scenario in self.settings.scenarios:
                    if not self.stacks_for(scenario):
                        continue
                    if scenario == "engine":
                        self._engine()
                    elif scenario == "idle":
                        self._idle()
                    elif scenario == "handshake-client":
                        self._client_side()
                    else:
                        self._loopback(scenario)
            finally:
                stop_children()
        return self.results

    def _result(self, key, scenario, title, unit, cpu_label, params) -> Result:
        result = Result(key, scenario, title, unit, cpu_label, params)
        self.results.append(result)
        return result

    def _start_servers(self, stacks: list[str], server_scenario: str) -> dict[str, Server | Target]:
        servers: dict[str, Server | Target] = {}
        try:
            for index, stack in enumerate(stacks):
                if stack == TARGET:
                    assert self.settings.target is not None
                    servers[stack] = Target(*self.settings.target)
                    continue
                port = self.settings.port + index if self.settings.port else 0
                servers[stack] = Server(self, stack, server_scenario, port)
            for server in servers.values():
                server.wait_ready()
        except BaseException:
            for server in servers.values():
                server.stop()
            raise
        return servers

    def _client(self, scenario: str, server: Server | Target, arguments: list[str]) -> dict:
        command = [sys.executable, CLIENT, scenario, "--host", server.host, "--port", str(server.port), *arguments]
        command += self._tls_arguments(server.stack)
        if server.stack == TARGET and scenario == "handshake":
            command.append("--no-echo")  # any TLS server, not only an echo server
        result, tail = self._measure(command, self.client_core)
        if tail is not None:
            if "SSLError" in tail:
                import ssl

                tail += (f" (the load generator uses the system {ssl.OPENSSL_VERSION}: does it support "
                         f"{self.params.label()}?)")
            raise BenchError(f"{scenario} client against {server.stack} failed: {tail}")
        return result

    def _measure(self, command: list[str], core: int | None) -> tuple[dict, str | None]:
        """Run a measuring child pinned to ``core``: (the JSON of its last
        stdout line, None), or ({}, its last stderr line) when it failed."""
        process = _spawn(command, self.env, core, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = process.communicate(timeout=self.settings.seconds * 20 + 120)
        finally:
            _reap(process)
        if process.returncode:
            return {}, (err.strip().splitlines() or ["no output"])[-1]
        return json.loads(out.strip().splitlines()[-1]), None

    def _tls_arguments(self, stack: str) -> list[str]:
        """The load generator's TLS options against ``stack``'s server."""
        if stack == "tcp":
            return []
        arguments = ["--tls-version", self.params.version, "--cipher", self.params.cipher]
        if stack != TARGET:
            arguments += ["--tls", "--ca", os.path.join(self.directory, "ca.pem")]
        else:
            s = self.settings
            assert s.target is not None
            arguments += ["--tls", "--name", s.target_name or s.target[0]]
            if s.target_ca:
                arguments += ["--ca", s.target_ca]
        if self.params.mtls:
            arguments += ["--cert", os.path.join(self.directory, "client.pem"),
                          "--key", os.path.join(self.directory, "client.key")]
        return arguments

    def _loopback(self, scenario: str) -> None:
        s = self.settings
        stacks = self.stacks_for(scenario)
        # (key, title, unit, load generator arguments, stacks) per measured variant
        variants: list[tuple[str, str, str, list[str], list[str]]] = []
        params: dict[str, dict[str, Any]] = {}
        for suffix, size, connections, sweep in self.points(scenario):
            first = len(variants)
            if scenario == "bulk":
                variants.append(("bulk" + suffix, f"bulk: {s.megabytes} MiB per connection, {size_label(size)} "
                                 f"writes, {connections} connection(s)", "MiB",
                                 ["--megabytes", str(s.megabytes), "--write-size", str(size),
                                  "--connections", str(connections)], stacks))
            elif scenario == "echo":
                variants.append(("echo" + suffix, f"echo: {size} B messages, {connections} connection(s), "
                                 f"{s.seconds:g} s", "message",
                                 ["--size", str(size), "--seconds", str(s.seconds),
                                  "--connections", str(connections)], stacks))
            else:
                common = ["--seconds", str(s.seconds), "--connections", str(connections)]
                variants.append(("handshake" + suffix, f"full handshakes: {connections} connection(s) at a time, "
                                 f"{s.seconds:g} s", "handshake", common, stacks))
                if s.resume:
                    variants.append(("handshake-resumed" + suffix,
                                     f"resumed handshakes (TLS {self.params.version} tickets): "
                                     f"{connections} connection(s) at a time, {s.seconds:g} s",
                                     "handshake", common + ["--resume"], self.resumable(stacks)))
            point: dict[str, Any] = {"reps": s.reps, "seconds": s.seconds, "size": size if scenario == "echo" else s.size,
                     "connections": connections, "megabytes": s.megabytes,
                     "write_size": size if scenario == "bulk" else s.write_size}
            if sweep:
                point["sweep"] = sweep
            if s.target:
                point["target"] = f"{s.target[0]}:{s.target[1]}"
            for variant in variants[first:]:
                params[variant[0]] = point
        if scenario == "bulk":
            warm = ["--megabytes", str(min(8, s.megabytes)), "--write-size", str(s.write_size)]
            server_scenario = "sink"
        elif scenario == "echo":
            warm = ["--size", str(s.size), "--seconds", "0.2"]
            server_scenario = "echo"
        else:
            warm = ["--seconds", "0.2"]
            server_scenario = "echo"
        results = {key: self._result(key, scenario, title, unit, "server process", params[key])
                   for key, title, unit, _, _ in variants}
        client_scenario = "bulk" if scenario == "bulk" else scenario
        servers = self._start_servers(stacks, server_scenario)
        try:
            for stack in stacks:
                self.progress("warmup", scenario=scenario, stack=stack)
                self._client(client_scenario, servers[stack], warm)
            for rep in range(s.reps):
                k = rep % len(stacks)
                for stack in stacks[k:] + stacks[:k]:
                    for key, _, _, arguments, variant_stacks in variants:
                        if stack not in variant_stacks:
                            continue
                        server = servers[stack]
                        before = _cpu_seconds(server.pid) if server.pid else math.nan
                        outcome = self._client(client_scenario, server, arguments)
                        used = _cpu_seconds(server.pid) - before if server.pid else math.nan
                        sample = Sample(stack, outcome["ops"], outcome["seconds"], used, rep,
                                        outcome.get("resumed") if server.stack != "tcp" else None,
                                        outcome.get("latency_us") or None)
                        result = results[key]
                        result.samples.append(sample)
                        if "negotiated" in outcome:
                            result.negotiated.setdefault(stack, dict(outcome["negotiated"]))
                        if "resumed" in outcome and key.startswith("handshake-resumed") \
                                and outcome["resumed"] < outcome["ops"] - s.connections:
                            result.notes.append(f"{stack}: only {outcome['resumed']} of {outcome['ops']} "
                                                f"handshakes were resumed")
                        self.progress("sample", result=result, sample=sample)
        finally:
            for server in servers.values():
                server.stop()
            for result in results.values():
                for stack, negotiated in result.negotiated.items():
                    server_side = servers[stack].negotiated
                    if negotiated.get("group", "?").startswith("?") and \
                            not server_side.get("group", "?").startswith("?"):
                        negotiated["group"] = server_side["group"] + " (server)"
                    if "mtls" in server_side:
                        negotiated["mtls"] = server_side["mtls"]
                result.check_negotiated(self.params)

    def _client_side(self) -> None:
        """``handshake-client``: each stack's client (tlsfast.bench.handshake_client)
        against one fixed stdlib-ssl echo server; the client process is
        measured (pinned where servers go), the server runs on the load
        generator's core.  Its CPU counts only its measured connections."""
        from tlsfast.bench.handshake_client import RESUMABLE as CLIENT_RESUMABLE

        s = self.settings
        stacks = self.stacks_for("handshake-client")
        if self.params.mtls:
            self.unavailable["handshake-client"] = "its clients send no client certificate (--mtls)"
            return
        common = ["--seconds", str(s.seconds)]
        variants = [("handshake-client", f"client side, full handshakes: one connection at a time against a "
                                         f"stdlib-ssl server, {s.seconds:g} s", common, stacks)]
        if s.resume:
            variants.append(("handshake-client-resumed",
                             f"client side, resumed handshakes (tlsfast ClientOptions' session cache): "
                             f"one connection at a time, {s.seconds:g} s", common + ["--resume"],
                             [x for x in stacks if x in CLIENT_RESUMABLE]))
        params = {"reps": s.reps, "seconds": s.seconds, "connections": 1, "server": "asyncio + stdlib ssl"}
        results = {key: self._result(key, "handshake-client", title, "handshake", "client process", params)
                   for key, title, _, _ in variants}
        if "tcp" in stacks:
            results["handshake-client"].notes.append("tcp: Twisted without TLS against a plain Twisted echo server")
        servers: dict[str, Server] = {}
        try:
            for server_stack in ["asyncio"] + (["tcp"] if "tcp" in stacks else []):
                servers[server_stack] = Server(self, server_stack, "echo", 0, on_client_core=True)
                servers[server_stack].wait_ready()
            for rep in range(s.reps):
                k = rep % len(stacks)
                for stack in stacks[k:] + stacks[:k]:
                    server = servers["tcp" if stack == "tcp" else "asyncio"]
                    for key, _, arguments, variant_stacks in variants:
                        if stack not in variant_stacks:
                            continue
                        outcome = self._handshake_client(stack, server, arguments)
                        sample = Sample(stack, outcome["ops"], outcome["seconds"], outcome["cpu_seconds"], rep,
                                        outcome["resumed"] if stack != "tcp" else None)
                        result = results[key]
                        result.samples.append(sample)
                        if outcome.get("negotiated"):
                            result.negotiated.setdefault(stack, dict(outcome["negotiated"]))
                        if key.endswith("-resumed") and outcome["resumed"] < outcome["ops"]:
                            result.notes.append(f"{stack}: only {outcome['resumed']} of {outcome['ops']} "
                                                f"handshakes were resumed")
                        self.progress("sample", result=result, sample=sample)
        finally:
            for server in servers.values():
                server.stop()
            for result in results.values():
                result.check_negotiated(self.params)

    def _handshake_client(self, stack: str, server: Server, arguments: list[str]) -> dict:
        command = [sys.executable, "-m", "tlsfast.bench.handshake_client", "--stack", stack,
                   "--port", str(server.port), "--ca", os.path.join(self.directory, "ca.pem"),
                   *arguments, *self.params.arguments()]
        result, tail = self._measure(command, self.server_core)
        if tail is not None:
            raise BenchError(f"handshake-client: the {stack} client failed: {tail}")
        return result

    def _engine(self) -> None:
        s = self.settings
        stacks = self.stacks_for("engine")
        params = {"rounds": s.engine_rounds, "seconds": s.engine_seconds, "sizes": s.engine_sizes}
        results = {}
        for size in s.engine_sizes:
            results[size] = self._result(
                f"engine-{size}", "engine",
                f"engine (in memory, no sockets): {size_label(size)} writes, {total_for(size) // 1024} KiB per round",
                "MiB", "the one benchmark thread (client + server)", dict(params, write_size=size))
        command = [sys.executable, "-m", "tlsfast.bench.engine", "--certs", self.directory,
                   "--sizes", ",".join(map(str, s.engine_sizes)), "--contenders", ",".join(stacks),
                   "--rounds", str(s.engine_rounds), "--seconds", str(s.engine_seconds),
                   *self.params.arguments()]
        stderr = tempfile.TemporaryFile(mode="w+")
        process = _spawn(command, self.env, self.server_core, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert process.stdout is not None  # spawned with stdout=PIPE
        try:
            for line in process.stdout:
                record = json.loads(line)
                if record["type"] == "negotiated":
                    negotiated = {k: record[k] for k in ("cipher", "group", "version", "mtls") if k in record}
                    results[record["write_size"]].negotiated[record["contender"]] = negotiated
                elif record["type"] == "sample":
                    sample = Sample(record["contender"], record["bytes"] / (1 << 20), record["wall_seconds"],
                                    record["cpu_seconds"], record["round"])
                    result = results[record["write_size"]]
                    result.samples.append(sample)
                    self.progress("sample", result=result, sample=sample)
                elif record["type"] == "done":
                    self.progress("engine-done", rounds=record["rounds"],
                                  skipped=(s.engine_rounds - record["rounds"]) * len(stacks) * len(s.engine_sizes))
            process.wait()
            for result in results.values():
                result.check_negotiated(self.params)
            if process.returncode:
                stderr.seek(0)
                tail = (stderr.read().strip().splitlines() or ["no output"])[-1]
                raise BenchError(f"engine benchmark failed: {tail}")
        finally:
            _reap(process)
            stderr.close()

    def _idle(self) -> None:
        s = self.settings
        stacks = self.stacks_for("idle")
        result = self._result("idle", "idle", f"memory per idle connection ({s.idle_connections} connections)",
                              "KiB per connection", "server process RSS", {"connections": s.idle_connections})
        for rep in range(s.reps):
            k = rep % len(stacks)
            for stack in stacks[k:] + stacks[:k]:
                servers = self._start_servers([stack], "idle")
                server = servers[stack]
                assert isinstance(server, Server)  # no target in the idle scenario
                try:
                    self._client("echo", server, ["--seconds", "0.2"])
                    before = _rss_bytes(server.pid)
                    command = [sys.executable, CLIENT, "idle", "--port", str(server.port),
                               "--connections", str(s.idle_connections)]
                    command += self._tls_arguments(stack)
                    client = _spawn(command, self.env, self.client_core, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                    try:
                        if _readline(client, 120).strip() != "HELD":
                            raise BenchError(f"idle client against {stack} failed")
                        time.sleep(0.5)
                        after = _rss_bytes(server.pid)
                    finally:
                        _reap(client)
                finally:
                    server.stop()
                # ops = connections, "cpu" = KiB: cpu_us_per_op / 1e6 is KiB per connection
                sample = Sample(stack, s.idle_connections, 1.0, (after - before) / 1024 / 1e6, rep)
                result.samples.append(sample)
                self.progress("sample", result=result, sample=sample)
