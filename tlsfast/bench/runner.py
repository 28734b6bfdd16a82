"""
Run loopback benchmarks: every stack's server in its own process on one
core, the client on another, stacks interleaved within each repetition;
report medians of the server's CPU per operation and of the rate.

    python -m tlsfast.bench.runner echo --size 64 --connections 1 --reps 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

from tlsfast.bench.certs import write_pki

TLS_STACKS = {"twisted", "tlsfast", "asyncio", "uvloop"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
OPENSSL_CONF = os.path.join(os.path.dirname(__file__), "openssl.cnf")


@dataclass
class Sample:
    stack: str
    ops: int
    seconds: float
    server_cpu_seconds: float

    @property
    def cpu_us_per_op(self) -> float:
        return self.server_cpu_seconds / self.ops * 1e6 if self.ops else float("nan")

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else float("nan")


@dataclass
class Result:
    scenario: str
    params: dict
    unit: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, stack: str, attribute: str) -> float:
        values = [getattr(s, attribute) for s in self.samples if s.stack == stack]
        return statistics.median(values) if values else float("nan")

    def stacks(self) -> list[str]:
        return list(dict.fromkeys(s.stack for s in self.samples))

    def summary(self) -> dict:
        out = {}
        for stack in self.stacks():
            cpu = [s.cpu_us_per_op for s in self.samples if s.stack == stack]
            rate = [s.rate for s in self.samples if s.stack == stack]
            out[stack] = {
                "cpu_us_per_op_median": statistics.median(cpu),
                "cpu_us_per_op_min": min(cpu), "cpu_us_per_op_max": max(cpu),
                "rate_median": statistics.median(rate),
                "rate_min": min(rate), "rate_max": max(rate),
            }
        return out


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _pinned(core: int | None):
    if core is None or not hasattr(os, "sched_setaffinity"):
        return None
    available = os.sched_getaffinity(0)
    if core not in available:
        return None
    return lambda: os.sched_setaffinity(0, {core})


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("OPENSSL_CONF", OPENSSL_CONF)
    return env


@contextlib.contextmanager
def running_server(stack: str, scenario: str, certs: str, core: int | None):
    process = subprocess.Popen(
        [sys.executable, "-m", "tlsfast.bench.server", "--stack", stack, "--scenario", scenario,
         "--certs", certs],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        preexec_fn=_pinned(core))
    try:
        line = process.stdout.readline()
        if not line.startswith("READY "):
            process.kill()
            raise RuntimeError(f"{stack} server did not start: {line.strip()} {process.stderr.read()[-2000:]}")
        yield process, int(line.split()[1])
    finally:
        process.kill()
        process.wait()


def _client(scenario: str, port: int, tls: bool, certs: str, core: int | None, extra: list[str]):
    command = [sys.executable, "-m", "tlsfast.bench.client", scenario, "--port", str(port), *extra]
    if tls:
        command += ["--tls", "--ca", os.path.join(certs, "ca.pem")]
    return command, dict(env=_env(), preexec_fn=_pinned(core))


def run_client(scenario, port, tls, certs, core, extra) -> dict:
    command, kwargs = _client(scenario, port, tls, certs, core, extra)
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(f"client failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(stack: str, scenario: str, client_args: list[str], warmup_args: list[str],
            certs: str, server_core: int | None, client_core: int | None) -> Sample:
    server_scenario = {"echo": "echo", "handshake": "echo", "bulk": "sink"}[scenario]
    tls = stack != "tcp"
    with running_server(stack, server_scenario, certs, server_core) as (server, port):
        run_client(scenario, port, tls, certs, client_core, warmup_args)
        before = _cpu_seconds(server.pid)
        result = run_client(scenario, port, tls, certs, client_core, client_args)
        used = _cpu_seconds(server.pid) - before
    return Sample(stack, result["ops"], result["seconds"], used)


def measure_idle_memory(stack: str, connections: int, certs: str, server_core, client_core) -> float:
    """Bytes of server RSS per idle established connection."""
    tls = stack != "tcp"
    with running_server(stack, "idle", certs, server_core) as (server, port):
        run_client("echo", port, tls, certs, client_core, ["--seconds", "0.3"])  # warm up
        before = _rss_bytes(server.pid)
        command, kwargs = _client("idle", port, tls, certs, client_core,
                                  ["--connections", str(connections)])
        client = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, **kwargs)
        try:
            if client.stdout.readline().strip() != "HELD":
                raise RuntimeError(f"idle client failed: {client.stderr.read()[-2000:]}")
            time.sleep(0.5)
            after = _rss_bytes(server.pid)
            client.stdin.write("\n")
            client.stdin.flush()
            client.wait(timeout=60)
        finally:
            client.kill()
    return (after - before) / connections


SCENARIO_UNITS = {"echo": "message", "bulk": "MiB", "handshake": "handshake"}


def client_arguments(args) -> tuple[list[str], list[str]]:
    if args.scenario == "echo":
        main = ["--seconds", str(args.seconds), "--connections", str(args.connections), "--size", str(args.size)]
        warm = ["--seconds", "0.3", "--connections", str(args.connections), "--size", str(args.size)]
    elif args.scenario == "bulk":
        main = ["--megabytes", str(args.megabytes), "--connections", str(args.connections),
                "--write-size", str(args.write_size)]
        warm = ["--megabytes", "8", "--connections", "1", "--write-size", str(args.write_size)]
    else:
        main = ["--seconds", str(args.seconds), "--connections", str(args.connections)]
        warm = ["--seconds", "0.3", "--connections", str(args.connections)]
    return main, warm


def run(args) -> Result:
    stacks = args.stacks.split(",")
    params = {k: v for k, v in vars(args).items() if k not in ("stacks", "json")}
    with tempfile.TemporaryDirectory() as certs:
        write_pki(certs)
        if args.scenario == "idle":
            result = Result("idle", params, "byte per connection")
            for rep in range(args.reps):
                for stack in stacks[rep % len(stacks):] + stacks[:rep % len(stacks)]:
                    per_connection = measure_idle_memory(stack, args.connections, certs,
                                                         args.server_core, args.client_core)
                    result.samples.append(Sample(stack, 1, 1.0, per_connection / 1e6))
            return result
        result = Result(args.scenario, params, SCENARIO_UNITS[args.scenario])
        main, warm = client_arguments(args)
        for rep in range(args.reps):
            # rotate the order each repetition so no stack always goes first
            for stack in stacks[rep % len(stacks):] + stacks[:rep % len(stacks)]:
                sample = measure(stack, args.scenario, main, warm, certs, args.server_core, args.client_core)
                result.samples.append(sample)
                if args.progress:
                    print(f"  rep {rep + 1} {stack:8s} {sample.cpu_us_per_op:9.1f} us CPU/{result.unit}"
                          f"  {sample.rate:10.1f} {result.unit}/s", file=sys.stderr, flush=True)
    return result


def table(result: Result, baseline: str = "twisted", floor: str = "tcp") -> str:
    unit = result.unit
    lines = [f"| stack | server CPU µs/{unit} (median) | min–max | {unit}/s (median) | CPU vs {baseline} | CPU vs {floor} |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    summary = result.summary()
    for stack, row in summary.items():
        cpu = row["cpu_us_per_op_median"]
        base = summary.get(baseline, {}).get("cpu_us_per_op_median")
        low = summary.get(floor, {}).get("cpu_us_per_op_median")
        if result.scenario == "idle":
            lines.append(f"| {stack} | {cpu:.0f} B/conn | {row['cpu_us_per_op_min']:.0f}–{row['cpu_us_per_op_max']:.0f} | – "
                         f"| {cpu / base if base else float('nan'):.2f} | – |")
            continue
        lines.append(
            f"| {stack} | {cpu:.1f} | {row['cpu_us_per_op_min']:.1f}–{row['cpu_us_per_op_max']:.1f} "
            f"| {row['rate_median']:.1f} | {cpu / base if base else float('nan'):.2f} "
            f"| {cpu / low if low else float('nan'):.2f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["echo", "bulk", "handshake", "idle"])
    parser.add_argument("--stacks", default="tcp,twisted,tlsfast")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--write-size", type=int, default=64 * 1024)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--quiet", dest="progress", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scenario == "idle" and args.connections == 1:
        args.connections = 1000
    result = run(args)
    print(table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"scenario": result.scenario, "params": result.params, "unit": result.unit,
                       "summary": result.summary(), "samples": [asdict(s) for s in result.samples]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
