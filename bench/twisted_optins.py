"""
A/B of the two opt-ins tlsfast offers every Twisted user: eager writes
(``tlsfast.twisted.install(eagerWrites=True)``) and the lean epoll reactor
(``tlsfast.twisted.epollreactor.install()``).

A Twisted TLS echo server (tlsfast installed, as ``tlsfast bench``'s
``tlsfast`` stack) runs pinned to one core, once per variant; tlsfast's load
generator (``tlsfast/bench/client.py echo``, stdlib ssl) drives it from the
other core.  Variants are interleaved per round.  Reported per variant: the
median over rounds of round trips per second and of the server's CPU time per
round trip.

    python bench/twisted_optins.py [--rounds 3] [--seconds 2] [--size 64] [--connections 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tlsfast.bench.certs import write_pki
from tlsfast.bench.runner import _cpu_seconds

CLIENT = Path(__file__).resolve().parent.parent / "tlsfast" / "bench" / "client.py"
VARIANTS = {"stock": (), "eager": ("--eager",), "lean": ("--lean",), "both": ("--eager", "--lean")}


def serve(args) -> None:
    import tlsfast.twisted

    if args.lean:
        from tlsfast.twisted import epollreactor

        assert epollreactor.install(), epollreactor.problems
    else:
        from twisted.internet import epollreactor as twistedEpoll

        twistedEpoll.install()
    assert tlsfast.twisted.install(eagerWrites=args.eager), tlsfast.twisted.unavailableReasons()
    from twisted.internet import protocol, reactor, ssl

    class Echo(protocol.Protocol):
        def connectionMade(self):
            self.transport.setTcpNoDelay(True)

        def dataReceived(self, data):
            self.transport.write(data)

    pems = Path(args.certs)
    certificate = ssl.PrivateCertificate.loadPEM((pems / "server.key").read_bytes() + (pems / "server.pem").read_bytes())
    port = reactor.listenSSL(0, protocol.Factory.forProtocol(Echo), certificate.options(), interface="127.0.0.1")
    print(f"READY {port.getHost().port}", flush=True)
    reactor.run()


def measure(args, variant: str, certs: str) -> tuple[float, float]:
    server = subprocess.Popen(["taskset", "-c", str(args.server_core), sys.executable, __file__, "serve",
                               "--certs", certs, *VARIANTS[variant]], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().split()  # type: ignore[union-attr]  # stdout=PIPE
        assert line and line[0] == "READY", line
        before = _cpu_seconds(server.pid)
        client = subprocess.run(
            ["taskset", "-c", str(args.client_core), sys.executable, str(CLIENT), "echo", "--port", line[1],
             "--tls", "--ca", os.path.join(certs, "ca.pem"), "--seconds", str(args.seconds),
             "--size", str(args.size), "--connections", str(args.connections)],
            capture_output=True, text=True, check=True)
        cpu = _cpu_seconds(server.pid) - before
    finally:
        server.kill()
        server.wait()
    result = json.loads(client.stdout)
    return result["ops"] / result["seconds"], cpu / result["ops"] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=("ab", "serve"), default="ab")
    parser.add_argument("--certs")
    parser.add_argument("--eager", action="store_true")
    parser.add_argument("--lean", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args)
        return
    with tempfile.TemporaryDirectory() as certs:
        write_pki(certs)
        samples: dict[str, list[tuple[float, float]]] = {variant: [] for variant in VARIANTS}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                samples[variant].append(measure(args, variant, certs))
    print(f"echo {args.size} B, {args.connections} connection(s), {args.rounds} x {args.seconds} s per variant")
    print(f"{'variant':8} {'round trips/s':>14} {'server CPU µs/round trip':>25}")
    for variant, points in samples.items():
        rate = statistics.median(p[0] for p in points)
        cpu = statistics.median(p[1] for p in points)
        print(f"{variant:8} {rate:14,.0f} {cpu:25.1f}")


if __name__ == "__main__":
    main()
