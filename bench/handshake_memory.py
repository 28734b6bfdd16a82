"""
Server-side CPU per TLS 1.3 handshake in memory (no sockets): the engine vs a
pyOpenSSL loop on the same contexts, interleaved.  Shows how much of a
handshake is OpenSSL's own work (docs/benchmarks.md, "Handshakes").

    .venv/bin/python bench/handshake_memory.py [handshakes-per-round]
"""

from __future__ import annotations

import sys
import time

from tlsfast import TLSEngine
from tlsfast.bench.engine import default_pki
from tlsfast.bench.peers import EnginePeer, PyOpenSSLPeer, pyopenssl_connection


def server_cpu_per_handshake(kind: str, server_ctx, client_ctx, count: int) -> float:
    """Mean server CPU µs per handshake (only the server's calls are timed)."""
    total = 0.0
    for _ in range(count):
        client = PyOpenSSLPeer(pyopenssl_connection(client_ctx, False, b"example.com"))
        connection = pyopenssl_connection(server_ctx, True)
        server = EnginePeer(TLSEngine(connection)) if kind == "engine" else PyOpenSSLPeer(connection)
        client.start()
        hello = client.outgoing()
        start = time.process_time()
        server.receive(hello)
        flight = server.outgoing()
        total += time.process_time() - start
        client.receive(flight)
        finished = client.outgoing()
        start = time.process_time()
        server.receive(finished)
        server.outgoing()
        total += time.process_time() - start
        assert server.connection.get_protocol_version_name() == "TLSv1.3"
    return total / count * 1e6


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    client_ctx, server_ctx = default_pki().pyopenssl_contexts()
    for _ in range(3):
        engine = server_cpu_per_handshake("engine", server_ctx, client_ctx, count)
        stock = server_cpu_per_handshake("pyopenssl", server_ctx, client_ctx, count)
        print(f"engine {engine:5.0f} µs   pyOpenSSL loop {stock:5.0f} µs   ratio {engine / stock:.2f}")


if __name__ == "__main__":
    main()
