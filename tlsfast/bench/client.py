"""
Load generators (stdlib ssl, the same for every server stack):
``python -m tlsfast.bench.client SCENARIO --port P [--tls --ca FILE] ...``
(or ``python .../tlsfast/bench/client.py ...``, as the runner starts it).
Prints one JSON line with what it did (``ops``, ``seconds`` and, over TLS,
``negotiated``: cipher, version and group as the client sees them).  The
``idle`` scenario prints ``HELD`` once its connections are up and waits for a
line on stdin.

``echo``, ``bulk`` and ``idle`` use asyncio.  ``handshake`` uses one thread per
connection with blocking sockets, because asyncio cannot offer a session for
resumption: with ``--resume`` each new connection offers the session (ticket)
of the previous one (``SSLContext.wrap_socket(session=...)``) and the result
counts how many were actually resumed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import sys
import threading
import time
from typing import Any

# No tlsfast imports: the runner starts this file by path, so that each load
# generator starts without importing tlsfast, pyOpenSSL and cryptography.

BULK_BLOCK = 1 << 20  # the sink acknowledges each MiB, so the client knows it arrived
HOSTNAME = "example.com"
PERCENTILES = {"p50": 0.50, "p99": 0.99, "p99.9": 0.999}


def percentiles(latencies: list[float]) -> dict[str, float]:
    """Nearest-rank percentiles of per-operation latencies (seconds in,
    microseconds out); empty when nothing was timed."""
    if not latencies:
        return {}
    ordered = sorted(latencies)
    last = len(ordered) - 1
    return {name: ordered[min(last, max(0, round(q * last)))] * 1e6 for name, q in PERCENTILES.items()}


def describe_stdlib(ssl_object) -> dict:
    """What a stdlib ``SSLObject``/``SSLSocket`` negotiated; the group only
    where Python can tell (``group()`` is not in 3.11)."""
    cipher = ssl_object.cipher()
    group = getattr(ssl_object, "group", None)
    return {"cipher": cipher[0] if cipher else "?", "version": ssl_object.version() or "?",
            "group": (group() or "?") if callable(group) else "? (stdlib ssl cannot tell)"}


def pin_stdlib(context: ssl.SSLContext, version: str, cipher: str) -> None:
    """Restrict a stdlib context to TLS ``version`` ("1.2" or "1.3") and, for
    TLS 1.2, the suite ``cipher`` (TLS 1.3 suites and the group come from
    OPENSSL_CONF: stdlib ``ssl`` has no API for them, and its own default
    cipher string would override the file's TLS 1.2 ``CipherString``)."""
    pinned = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    context.minimum_version = context.maximum_version = pinned
    if version == "1.2":
        context.set_ciphers(cipher)


def _context(args) -> ssl.SSLContext | None:
    if not args.tls:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if args.ca:
        context.load_verify_locations(args.ca)
    else:  # --target without --target-ca: measure a server whoever signed its certificate
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    pin_stdlib(context, args.tls_version, args.cipher)
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    return context


async def _open(args, context):
    reader, writer = await asyncio.open_connection(
        args.host, args.port, ssl=context, server_hostname=args.name if context else None,
        limit=1 << 22)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is not None and not NEGOTIATED:
        NEGOTIATED.update(describe_stdlib(ssl_object))
    return reader, writer


NEGOTIATED: dict = {}


async def echo(args) -> dict:
    context = _context(args)
    message = b"x" * args.size
    deadline = time.monotonic() + args.seconds
    counts: list[int] = []
    latencies: list[float] = []  # one per message: write to the last byte of the echo
    clock = time.perf_counter

    async def worker():
        reader, writer = await _open(args, context)
        n = 0
        while time.monotonic() < deadline:
            sent = clock()
            writer.write(message)
            await reader.readexactly(len(message))
            latencies.append(clock() - sent)
            n += 1
        counts.append(n)
        writer.close()

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    return {"ops": sum(counts), "seconds": time.monotonic() - start, "latency_us": percentiles(latencies)}


async def bulk(args) -> dict:
    context = _context(args)
    total = args.megabytes * BULK_BLOCK
    chunk = b"b" * args.write_size

    async def worker():
        reader, writer = await _open(args, context)
        sent = 0
        while sent < total:
            writer.write(chunk[: min(len(chunk), total - sent)])
            sent += min(len(chunk), total - sent)
            await writer.drain()
        await reader.readexactly(total // BULK_BLOCK)
        writer.close()

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    return {"ops": args.megabytes * args.connections, "seconds": time.monotonic() - start}


def handshake(args) -> dict:
    context = _context(args)
    deadline = time.monotonic() + args.seconds
    counts, resumed, errors = [], [], []
    latencies: list[float] = []  # one per connection: connect to close (list.append is thread-safe)
    # --count: the connections left to make, shared by the workers (next() on an iterator is atomic)
    remaining = iter(range(args.count)) if args.count is not None else None

    def worker():
        n = reused = 0
        session = None
        try:
            while time.monotonic() < deadline and (remaining is None or next(remaining, None) is not None):
                began = time.perf_counter()
                sock = socket.create_connection((args.host, args.port))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if context is not None:
                    sock = context.wrap_socket(sock, server_hostname=args.name,
                                               session=session if args.resume else None)
                if not args.no_echo:
                    sock.sendall(b"h")
                    if sock.recv(1) != b"h":
                        raise RuntimeError("server closed the connection")
                if context is not None:
                    reused += sock.session_reused
                    if not NEGOTIATED:
                        NEGOTIATED.update(describe_stdlib(sock))
                    # TLS 1.3 tickets arrive after the handshake; recv() above read them
                    if args.resume and sock.session is not None and sock.session.has_ticket:
                        session = sock.session
                sock.close()
                latencies.append(time.perf_counter() - began)
                n += 1
        except BaseException as e:  # noqa: BLE001 - a worker thread's failure is re-raised by the main thread
            errors.append(e)
        counts.append(n)
        resumed.append(reused)

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {"ops": sum(counts), "seconds": time.monotonic() - start, "resumed": sum(resumed),
            "latency_us": percentiles(latencies)}


async def idle(args) -> dict:
    context = _context(args)
    held = []
    for _ in range(args.connections):
        reader, writer = await _open(args, context)
        writer.write(b"i")
        await reader.readexactly(1)
        held.append(writer)
    print("HELD", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for writer in held:
        writer.close()
    return {"ops": len(held), "seconds": 0.0}


SCENARIOS = {"echo": echo, "bulk": bulk, "handshake": handshake, "idle": idle}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default=HOSTNAME, help="server name (SNI, certificate check)")
    parser.add_argument("--no-echo", action="store_true",
                        help="handshake: close after the handshake (a server that does not echo)")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--ca")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--write-size", type=int, default=64 * 1024)
    parser.add_argument("--resume", action="store_true", help="handshake: resume sessions")
    parser.add_argument("--count", type=int, help="handshake: stop after this many connections (or --seconds)")
    parser.add_argument("--tls-version", choices=("1.2", "1.3"), default="1.3")
    parser.add_argument("--cipher", default="TLS_AES_128_GCM_SHA256", help="TLS 1.2: the suite (OpenSSL name)")
    parser.add_argument("--cert", help="client certificate chain (mutual TLS)")
    parser.add_argument("--key", help="the client certificate's key")
    args = parser.parse_args(argv)
    run: Any = SCENARIOS[args.scenario]  # handshake is synchronous, the others coroutines
    result = run(args) if args.scenario == "handshake" else asyncio.run(run(args))
    if NEGOTIATED:
        result["negotiated"] = NEGOTIATED
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
