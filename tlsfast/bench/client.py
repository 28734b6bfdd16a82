"""
Load generators (asyncio + stdlib ssl, the same for every server stack):
``python -m tlsfast.bench.client SCENARIO --port P [--tls --ca FILE] ...``.
Prints one JSON line with what it did.  The ``idle`` scenario prints
``HELD`` once its connections are up and waits for a line on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time

from tlsfast.bench.server import BULK_BLOCK


def _context(args) -> ssl.SSLContext | None:
    if not args.tls:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(args.ca)
    return context


async def _open(args, context):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", args.port, ssl=context, server_hostname="example.com" if context else None,
        limit=1 << 22)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        import socket

        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def echo(args) -> dict:
    context = _context(args)
    message = b"x" * args.size
    deadline = time.monotonic() + args.seconds
    counts = []

    async def worker():
        reader, writer = await _open(args, context)
        n = 0
        while time.monotonic() < deadline:
            writer.write(message)
            await reader.readexactly(len(message))
            n += 1
        counts.append(n)
        writer.close()

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    return {"ops": sum(counts), "seconds": time.monotonic() - start}


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


async def handshake(args) -> dict:
    context = _context(args)
    deadline = time.monotonic() + args.seconds
    counts = []

    async def worker():
        n = 0
        while time.monotonic() < deadline:
            reader, writer = await _open(args, context)
            writer.write(b"h")
            await reader.readexactly(1)
            writer.close()
            await writer.wait_closed()
            n += 1
        counts.append(n)

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    return {"ops": sum(counts), "seconds": time.monotonic() - start}


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
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--ca")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--write-size", type=int, default=64 * 1024)
    args = parser.parse_args(argv)
    result = asyncio.run(SCENARIOS[args.scenario](args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
