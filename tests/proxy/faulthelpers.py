"""
Helpers for the proxy's fault tests (test_faults.py): the proxy's open file
descriptors and peak memory from /proc, a backend that streams or echoes on
request, an asyncio echo backend for many connections, abrupt client exits
(RST), and a real ClientHello to send only part of.  Every wait is bounded by
helpers.TIMEOUT.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import socket
import ssl
import struct
import threading
import time

from tests.proxy.helpers import TIMEOUT

MiB = 1024 * 1024


# -- the proxy process, from /proc ----------------------------------------------

def fdCount(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def waitFdCount(pid: int, expected: int) -> int:
    """Wait (bounded) for the process to have C{expected} fds open; the last count."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        count = fdCount(pid)
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def runningFdCount(proxy) -> int:
    """
    The proxy's fds once its reactor is running, for a proxy started with
    C{--metrics 127.0.0.1:0}: its "listening" line comes before the reactor
    runs and adds its signal waker (a pipe), so a count taken at once may
    be short.  A scrape served proves it runs.
    """
    from tests.proxy.test_operations import metricsPort, scrape

    scrape(metricsPort(proxy))
    # Then the scrape's connection closes: the count that holds for a while.
    deadline = time.monotonic() + TIMEOUT
    counts = [fdCount(proxy.process.pid)]
    while len(set(counts[-10:])) > 1 or len(counts) < 10:
        if time.monotonic() > deadline:
            raise AssertionError(f"the proxy's fd count does not settle: {counts[-10:]}")
        time.sleep(0.02)
        counts.append(fdCount(proxy.process.pid))
    return counts[-1]


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def resetPeakRss(pid: int) -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; that RSS."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    return _status(pid, "VmRSS")


def peakRss(pid: int) -> int:
    """The peak RSS (VmHWM) since the last L{resetPeakRss}: no sample can miss it."""
    return _status(pid, "VmHWM")


def connId(proxy, sock) -> str:
    """The proxy's conn= id for a client socket (from its accept line)."""
    port = sock.getsockname()[1]
    line = proxy.waitFor(rf"event=accept .*client=127\.0\.0\.1:{port}\b")[0]
    return re.search(r"conn=(\d+)", line).group(1)


def closeLine(proxy, conn: str) -> str:
    return proxy.waitFor(rf"event=close .*conn={conn}\b")[0]


# -- clients ----------------------------------------------------------------------

def vanish(sock) -> None:
    """Close abruptly: SO_LINGER 0 makes close() send a RST (and no close_notify)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def clientHello(name: str = "example.com") -> bytes:
    """A real ClientHello (as CPython's ssl sends it), to send only part of."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[0] == 0x16 and len(hello) > 100, hello[:16]
    return hello


def readExactly(sock, size: int, digest=None) -> int:
    """Read C{size} bytes (or until EOF) into C{digest}; how many came."""
    count = 0
    while count < size:
        chunk = sock.recv(min(size - count, 1 << 20))
        if not chunk:
            break
        if digest is not None:
            digest.update(chunk)
        count += len(chunk)
    return count


# -- backends -----------------------------------------------------------------------

def streamBlock(name: str) -> bytes:
    """1 MiB of pseudo-random bytes particular to C{name} (so streams cannot mix unnoticed)."""
    return random.Random(name).randbytes(MiB)


def streamDigest(name: str, size: int) -> str:
    block, digest = streamBlock(name), hashlib.sha256()
    for offset in range(0, size, MiB):
        digest.update(block[:min(MiB, size - offset)])
    return digest.hexdigest()


class StreamServer:
    """
    A handler for helpers.Backend.  The client sends one line first:
    C{NAME SIZE} makes the backend send SIZE bytes of C{streamBlock(NAME)}
    repeated (then close); C{echo} makes it echo.  C{outcomes[NAME]} says how
    a stream ended: C{"sent"}, or the exception that stopped it.
    """

    def __init__(self):
        self.outcomes: dict[str, object] = {}
        self.changed = threading.Condition()

    def __call__(self, sock):
        line = b""
        while not line.endswith(b"\n"):
            byte = sock.recv(1)
            if not byte:
                return
            line += byte
        words = line.decode().split()
        if words == ["echo"]:
            while data := sock.recv(65536):
                sock.sendall(data)
            return
        name, size = words[0], int(words[1])
        block = streamBlock(name)
        try:
            for offset in range(0, size, MiB):
                sock.sendall(block[:min(MiB, size - offset)])
            outcome = "sent"
        except OSError as e:
            outcome = e
        with self.changed:
            self.outcomes[name] = outcome
            self.changed.notify_all()

    def waitOutcome(self, name: str):
        with self.changed:
            if not self.changed.wait_for(lambda: name in self.outcomes, TIMEOUT):
                raise AssertionError(f"the backend's stream {name!r} did not end: {self.outcomes}")
            return self.outcomes[name]


class AsyncEchoBackend:
    """
    An echo server on its own asyncio loop in one thread, for thousands of
    connections.  C{accepted} counts connections, C{open} those still open.
    """

    def __init__(self):
        self.accepted = 0
        self.open = 0
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        if not started.wait(TIMEOUT):
            raise AssertionError("the asyncio backend did not start")

    def _run(self, started):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._echo, "127.0.0.1", 0, backlog=4096))
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    async def _echo(self, reader, writer):
        self.accepted += 1
        self.open += 1
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            self.open -= 1
            writer.close()

    def close(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)


# -- peers that never close ------------------------------------------------------------

async def silentTLSClient(port: int, context):
    """
    A TLS client that completes its handshake, then neither sends nor reads
    (so it never answers the proxy's close_notify); its asyncio writer.
    """
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="example.com",
                                              ssl_handshake_timeout=TIMEOUT)
    writer.transport.pause_reading()
    return writer


class NeverReads:
    """
    A handler for helpers.Backend that accepts and never reads; C{accepted}
    is set once a connection is in.  It gives the socket back (closed) when
    the test is over (C{release}).
    """

    def __init__(self):
        self.accepted = threading.Event()
        self.release = threading.Event()

    def __call__(self, sock):
        self.accepted.set()
        self.release.wait(TIMEOUT)
