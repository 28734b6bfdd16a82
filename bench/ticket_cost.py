"""
Server-side CPU per full TLS 1.3 handshake in memory, by the number of
session tickets the server sends (``ServerOptions(sessionTickets=N)``: 0, 1
and OpenSSL's default 2), interleaved rounds; only the server's calls are
timed (docs/benchmarks.md, "Per-connection breakdown").

    taskset -c 1 .venv/bin/python bench/ticket_cost.py [handshakes-per-round]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests import pki
from tlsfast import TLSEngine
from tlsfast.options import ClientOptions, ServerOptions

COUNTS = (0, 1, 2)
ROUNDS = 7


def server_cpu(server: ServerOptions, client: ClientOptions) -> float:
    """Server CPU seconds for one full handshake (and its tickets)."""
    clock = time.thread_time
    started = clock()
    engine = TLSEngine(server.newConnection())
    spent = clock() - started
    peer = TLSEngine(client.newConnection(443))
    peer.do_handshake()
    for _ in range(6):
        hello = peer.outgoing()
        started = clock()
        if hello:
            engine.receive(hello)
        answer = engine.outgoing()
        spent += clock() - started
        if answer:
            peer.receive(answer)
        if not hello and not answer:
            break
    return spent


def main(count: int) -> None:
    identity = pki.leaf("ecdsa", names=("example.com",))
    servers = {n: ServerOptions(identity.certificate, identity.key, sessionTickets=n, keyLogFile=False)
               for n in COUNTS}
    client = ClientOptions("example.com", caCertificates=[pki.certificate_authority().certificate],
                           sessionCache=False, keyLogFile=False)
    for server in servers.values():  # warm up
        for _ in range(50):
            server_cpu(server, client)
    rounds: dict[int, list[float]] = {n: [] for n in COUNTS}
    for _ in range(ROUNDS):
        # one handshake of each count in turn, so that drift (other processes,
        # clock speed) hits all counts alike
        spent = dict.fromkeys(COUNTS, 0.0)
        for index in range(count):
            for n in COUNTS if index % 2 == 0 else COUNTS[::-1]:
                spent[n] += server_cpu(servers[n], client)
        for n in COUNTS:
            rounds[n].append(spent[n] / count * 1e6)
    baseline = statistics.median(rounds[2])
    for n in COUNTS:
        median = statistics.median(rounds[n])
        print(f"{n} ticket(s): {median:6.1f} µs server CPU per full handshake "
              f"({median / baseline:.3f}× 2 tickets); rounds: {[round(x) for x in rounds[n]]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
