"""
C heap held per idle server-side TLS connection of the proxy's engine, in
memory (no sockets): N connections made with the proxy's ``ServerOptions``
(tickets on, process ticket keys), each through a full TLS 1.3 handshake and
a 1 B echo, then kept open while the clients are freed.  glibc's
``mallinfo2()`` gives the bytes in use after each step (docs/benchmarks.md,
"Proxy idle memory").

    .venv/bin/python bench/idle_memory.py [connections]

Under ``heaptrack`` (``TLSFAST_IDLE_HOLD=1`` exits without freeing the
servers) the leaked-at-exit allocations are the idle connections' sites.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys

from tlsfast import TLSEngine
from tlsfast.bench.engine import default_pki
from tlsfast.bench.peers import PyOpenSSLPeer, pyopenssl_connection
from tlsfast.options import ServerOptions
from tlsfast.proxy._ticketkeys import processTicketKeys


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


_libc = ctypes.CDLL(None)
_libc.mallinfo2.restype = _Mallinfo2


def heap_in_use() -> int:
    """Bytes malloc has handed out and not had back (main arena + mmaps)."""
    gc.collect()
    info = _libc.mallinfo2()
    return info.uordblks + info.hblkhd


def idle_connections(count: int) -> tuple[dict[str, float], list[TLSEngine]]:
    """Per-connection heap growth of each step, and the idle engines."""
    pki = default_pki()
    client_context, _ = pki.pyopenssl_contexts()
    options = ServerOptions(pki.path("server.pem"), pki.path("server.key"),
                            sessionTickets=True, ticketKeys=processTicketKeys())
    steps: dict[str, float] = {"new SSL* + engine": 0, "ClientHello -> flight": 0, "Finished -> tickets": 0, "1 B echo": 0}
    servers: list[TLSEngine] = []
    clients: list[PyOpenSSLPeer] = []
    for _ in range(count):
        clients.append(PyOpenSSLPeer(pyopenssl_connection(client_context, False, b"example.com")))
    for client in clients:
        before = heap_in_use()
        server = TLSEngine(options.newConnection())
        after = heap_in_use()
        steps["new SSL* + engine"] += after - before
        client.start()
        hello = client.outgoing()
        before = heap_in_use()
        server.receive(hello)
        flight = server.outgoing()
        steps["ClientHello -> flight"] += heap_in_use() - before
        client.receive(flight)
        finished = client.outgoing()
        before = heap_in_use()
        server.receive(finished)
        tickets = server.outgoing()
        steps["Finished -> tickets"] += heap_in_use() - before
        client.receive(tickets)
        request = client.send(b"x")
        before = heap_in_use()
        assert server.receive(request) == b"x"
        echoed = server.send(b"x") + server.outgoing()
        steps["1 B echo"] += heap_in_use() - before
        assert client.receive(echoed) == b"x"
        servers.append(server)
    del clients[:]
    return {name: total / count for name, total in steps.items()}, servers


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    start = heap_in_use()
    steps, servers = idle_connections(count)
    held = heap_in_use() - start
    for name, bytes_per in steps.items():
        print(f"{name:20s} {bytes_per:8.0f} B")
    print(f"{'held per idle conn':20s} {held / count:8.0f} B  ({count} connections, clients freed)")
    if os.environ.get("TLSFAST_IDLE_HOLD"):
        os._exit(0)


if __name__ == "__main__":
    main()
