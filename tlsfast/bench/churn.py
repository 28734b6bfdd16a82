"""
Connection churn: resident memory of a Twisted drop-in server and of the
proxy over many short TLS connections (connect, full handshake, 1 B echo,
close).  Issue #13 asks that 100,000 of them leave RSS flat.

The subject runs pinned to one core, the stdlib-ssl load generator
(``client.py handshake --count``) on the other; RSS is read from
``/proc/PID/statm`` after each batch.  "Growth" is the RSS after the last
batch minus the RSS after the first (the first batch warms allocator pools,
session caches and lazy imports up).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

SUBJECTS = ("server", "proxy")
PAGE = os.sysconf("SC_PAGE_SIZE")
#: What "flat" allows after the warm-up batch: allocator and cache noise, not
#: a per-connection leak (100 bytes per connection over 100,000 is 9.5 MiB).
FLAT_BYTES = 4 << 20


@dataclass
class ChurnResult:
    subject: str
    connections: list[int] = field(default_factory=list)  # cumulative, after each batch
    rss: list[int] = field(default_factory=list)  # bytes, after each batch

    @property
    def growth(self) -> int:
        return self.rss[-1] - self.rss[0]

    @property
    def flat(self) -> bool:
        return self.growth < FLAT_BYTES

    def to_json(self) -> dict:
        return {"subject": self.subject, "connections": self.connections, "rss": self.rss,
                "growth": self.growth, "flat": self.flat}


def rssBytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def churn(subject: str, connections: int, batches: int, directory: str, env: dict, params,
          cores: tuple[int | None, int | None], clients: int = 4) -> ChurnResult:
    """Run C{connections} through C{subject} in C{batches}, reading its RSS after each."""
    from tlsfast.bench.breakdown import _Processes, startServing
    from tlsfast.bench.runner import CLIENT, BenchError

    processes = _Processes(env, cores)
    result = ChurnResult(subject)
    try:
        measured, port = startServing(subject, processes, directory, params)
        done = 0
        for batch in range(batches):
            count = connections // batches + (1 if batch < connections % batches else 0)
            load = processes.start([sys.executable, CLIENT, "handshake", "--port", port, "--tls",
                                    "--ca", os.path.join(directory, "ca.pem"), "--connections", str(clients),
                                    "--count", str(count), "--seconds", "3600"],
                                   False, stdout=subprocess.PIPE, text=True)
            out, _ = load.communicate()
            if load.returncode != 0 or measured.poll() is not None:
                raise BenchError(f"churn {subject}: the load generator failed (status {load.returncode}) "
                                 f"or the subject exited (status {measured.poll()})")
            done += json.loads(out.strip().splitlines()[-1])["ops"]
            result.connections.append(done)
            result.rss.append(rssBytes(measured.pid))
    finally:
        processes.stop()
    return result


def markdown(results: list[ChurnResult]) -> str:
    lines = ["| subject | connections | RSS after the first batch, KiB | RSS at the end, KiB | growth, KiB | "
             "per connection, B | flat |", "|---|---:|---:|---:|---:|---:|:---:|"]
    for r in results:
        perConnection = r.growth / max(1, r.connections[-1] - r.connections[0])
        lines.append(f"| {r.subject} | {r.connections[-1]:,} | {r.rss[0] // 1024:,} | {r.rss[-1] // 1024:,} | "
                     f"{r.growth // 1024:,} | {perConnection:.1f} | {'yes' if r.flat else 'NO'} |")
    lines += ["", f"Flat: growth after the first batch under {FLAT_BYTES >> 20} MiB. RSS after each batch:", ""]
    for r in results:
        lines.append(f"- {r.subject}: " + ", ".join(f"{n:,}: {rss // 1024:,}" for n, rss in zip(r.connections, r.rss)))
    return "\n".join(lines) + "\n"


def parser():
    from tlsfast._cliutil import OneLineParser

    p = OneLineParser(prog="tlsfast bench churn", description=__doc__.strip().splitlines()[0] + " " +
                      "Exit status 1 when RSS is not flat.")
    p.add_argument("subjects", nargs="*", metavar="SUBJECT", help=f"any of {', '.join(SUBJECTS)} (default: all)")
    p.add_argument("--connections", type=int, default=100_000, help="per subject (default 100000)")
    p.add_argument("--batches", type=int, default=10, help="RSS is read after each (default 10)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--server-core", type=int, default=0, help="pin the subject to this CPU")
    p.add_argument("--client-core", type=int, default=1, help="pin the load generator to this CPU")
    return p


def run(options: argparse.Namespace) -> int:
    """``tlsfast bench churn``."""
    from tlsfast._cliutil import UsageError
    from tlsfast.bench.breakdown import chosenSubjects, workDirectory
    from tlsfast.bench.runner import BenchError, stop_children
    from tlsfast.bench.tlsconfig import resolve

    subjects, pinned = chosenSubjects(options, SUBJECTS)
    if options.batches < 2 or options.connections < options.batches:
        raise UsageError("--batches must be at least 2 and --connections at least --batches")
    params = resolve()
    results = []
    with workDirectory("tlsfast-churn-", params) as (directory, env):
        try:
            for subject in subjects:
                results.append(churn(subject, options.connections, options.batches, directory, env, params,
                                     pinned))
        except BenchError as e:
            print(f"tlsfast bench churn: error: {e}", file=sys.stderr)
            return e.status
        finally:
            stop_children()
    print(markdown(results))
    if options.json:
        with open(options.json, "w") as f:
            json.dump({"tls": params.to_json(), "results": [r.to_json() for r in results]}, f, indent=1)
    return 0 if all(r.flat for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    return run(parser().parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
