"""
The in-memory benchmark harness: client->server bulk transfer, no sockets.

Every contender moves the same application data from a client to a server in
writes of one size; the ciphertext goes from the client's memory BIO straight
into the server's.  ``tlsfast bench engine`` runs this module as a child
process, and :mod:`tlsfast.bench.engine_report` (``make bench-report``,
``bench/report.py``) and the pytest-benchmark suite in ``bench/`` use it in
process.  The contenders, one name each:

    tlsfast       tlsfast.TLSEngine on both ends: server.receive(client.send(m))
    twisted       pyOpenSSL Connections driven as twisted.protocols.tls does:
                  send() in 16 KiB slices each followed by bio_read(2**15); the
                  server bio_write()s, recv(2**15) until WantReadError, then one
                  more bio_read(2**15) (its send-BIO flush)
    asyncio       stdlib ssl.SSLObject over MemoryBIOs, as asyncio's sslproto
                  uses them (system OpenSSL, a different build than cryptography's)
    c             tlsfast._engine.reference_transfer: the same SSL_write /
                  BIO_read / BIO_write / SSL_read loop in C without the GIL, on
                  two pyOpenSSL Connections (the limit the engine aims at)
    tlsfast-glue  the glue in memory: a client and a server
                  tlsfast.twisted.TLSMemoryBIOProtocol (what install() puts in
                  Twisted) over StringTransports; each write() goes through the
                  glue, the client's transport.value() into the server's
                  dataReceived, and the server application counts the bytes
    twisted-glue  the same pair with stock twisted.protocols.tls classes

The glue pairs use the unbuffered ``TLSMemoryBIOProtocol`` (every write goes
straight to the record path), not ``BufferingTLSTransport``, whose small-write
aggregation waits for a reactor turn that an in-memory loop does not have.

``run()`` is the timed part.  Like an application that consumes what it
receives, it keeps only a count of the plaintext bytes the server got
(``check()`` compares it to ``total`` after timing): keeping every chunk alive
costs the Python contenders about one page fault per 4 KiB received, which is
not what is being compared.  ``verify()`` runs the same loop untimed with
``collect=True`` and compares the received bytes with the sent ones.

Run as a child process (``python -m tlsfast.bench.engine ...``) so that
``OPENSSL_CONF`` is in place before stdlib ``ssl`` initialises the system
OpenSSL.  Rounds are interleaved: in each, every contender moves its data
once per write size, in an order that rotates from round to round; timing is
thread CPU time (what this thread actually ran) and wall clock.  Every few
rounds the connections are made anew, since buffer placement alone moves a
single layout's rates by tens of percent.  Prints one JSON line per sample.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import json
import os
import random
import resource
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

# Only interfaces at import: ``tlsfast bench`` imports this module in the
# process that starts and signals the others, which stays without Twisted's
# reactor machinery (and logging); the glue pairs import the rest in setup().
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IProtocol,
)
from zope.interface import implementer

from tlsfast.bench.certs import write_pki
from tlsfast.bench.peers import EnginePeer, PyOpenSSLPeer, pump, pyopenssl_connection
from tlsfast.bench.tlsconfig import TLSParams, add_arguments, describe_pyopenssl, from_arguments, pin_context

KiB = 1024
MiB = 1024 * KiB
HOSTNAME = "example.com"
WRITE_SIZES = (64, 1 * KiB, 16 * KiB, 64 * KiB)
#: The engine loops (``tlsfast bench engine`` runs these by default) ...
CONTENDERS = ("tlsfast", "twisted", "asyncio", "c")
#: ... and the Twisted glue around them, in memory.
GLUE_CONTENDERS = ("tlsfast-glue", "twisted-glue")
LABELS = {"tlsfast": "tlsfast engine", "twisted": "pyOpenSSL loop (stock Twisted)",
          "asyncio": "stdlib SSLObject (asyncio)", "c": "C reference loop",
          "tlsfast-glue": "tlsfast glue (TLSMemoryBIOProtocol)",
          "twisted-glue": "stock Twisted glue (TLSMemoryBIOProtocol)"}


def total_for(write_size: int) -> int:
    """Application bytes per timed operation: small writes get less, so that one
    pyOpenSSL round stays in the tens of milliseconds."""
    if write_size <= 256:
        return 256 * KiB
    if write_size <= 4 * KiB:
        return 1 * MiB
    return 4 * MiB - (4 * MiB) % write_size


class Pki:
    def __init__(self, certs: str, params: TLSParams):
        self.certs, self.params = certs, params
        self._contexts = None

    def path(self, name: str) -> str:
        return os.path.join(self.certs, name)

    def pyopenssl_contexts(self):
        from OpenSSL import SSL

        if self._contexts is None:
            server = SSL.Context(SSL.TLS_METHOD)
            server.use_certificate_chain_file(self.path("server.pem"))
            server.use_privatekey_file(self.path("server.key"))
            client = SSL.Context(SSL.TLS_METHOD)
            client.load_verify_locations(self.path("ca.pem"))
            client.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: ok)
            if self.params.mtls:
                server.load_verify_locations(self.path("ca.pem"))
                server.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
                                  lambda conn, cert, errno, depth, ok: ok)
                client.use_certificate_chain_file(self.path("client.pem"))
                client.use_privatekey_file(self.path("client.key"))
            for context in (client, server):
                pin_context(context, self.params)
            self._contexts = client, server
        return self._contexts

    def pyopenssl_connection(self, server: bool):
        """A memory-BIO Connection on this PKI's client or server context."""
        client_context, server_context = self.pyopenssl_contexts()
        if server:
            return pyopenssl_connection(server_context, True)
        return pyopenssl_connection(client_context, False, HOSTNAME.encode())

    def pyopenssl_pair(self):
        return self.pyopenssl_connection(server=False), self.pyopenssl_connection(server=True)

    def stdlib_contexts(self):
        from tlsfast.bench.client import pin_stdlib  # the load generator's module: asyncio at import

        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(self.path("server.pem"), self.path("server.key"))
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.load_verify_locations(self.path("ca.pem"))
        if self.params.mtls:
            server.verify_mode = ssl.CERT_REQUIRED
            server.load_verify_locations(self.path("ca.pem"))
            client.load_cert_chain(self.path("client.pem"), self.path("client.key"))
        for context in (client, server):
            pin_stdlib(context, self.params.version, self.params.cipher)
        return client, server


@functools.cache
def default_pki() -> Pki:
    """One throwaway CA and certificates per process (in a temporary directory
    removed at exit), with the default TLS parameters."""
    directory = tempfile.mkdtemp(prefix="tlsfast-bench-")
    atexit.register(shutil.rmtree, directory, True)
    write_pki(directory)
    return Pki(directory, TLSParams())


def _describe_pair(client, server) -> dict:
    """What a pyOpenSSL pair negotiated, as the client sees it, and whether the
    server got a client certificate."""
    return dict(describe_pyopenssl(client), mtls=server.get_peer_certificate() is not None)


def _read_all(read: Callable[[int], bytes], want_read: type[Exception], got: list[bytes] | None) -> int:
    """Plaintext bytes from ``read(32768)`` calls until ``want_read`` (the
    receive loop of Twisted's TLS protocol and of asyncio's sslproto
    alike); the chunks go to ``got`` when verifying."""
    received = 0
    while True:
        try:
            plaintext = read(32768)
        except want_read:
            return received
        received += len(plaintext)
        if got is not None:
            got.append(plaintext)


class Transfer:
    name = "?"

    def __init__(self, pki: Pki, write_size: int, total: int | None = None):
        self.write_size = write_size
        self.total = total_for(write_size) if total is None else total
        self.writes = self.total // write_size
        self.total = self.writes * write_size
        self.message = os.urandom(write_size)
        self.negotiated: dict = {}
        self.setup(pki)

    def setup(self, pki: Pki) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, collect: bool = False):  # pragma: no cover - abstract
        """The timed part: move ``total`` bytes; return the count of plaintext
        bytes the server got (or, with ``collect``, the chunks)."""
        raise NotImplementedError

    def check(self, received: int) -> None:
        if received != self.total:
            raise AssertionError(f"{self.name}/{self.write_size}: server got {received} bytes, "
                                 f"expected {self.total}")

    def verify(self) -> None:
        """Untimed run comparing the received bytes with the sent ones."""
        got = b"".join(self.run(collect=True))
        if got != self.message * self.writes:
            raise AssertionError(f"{self.name}/{self.write_size}: received data differs")


class EngineTransfer(Transfer):
    name = "tlsfast"

    def setup(self, pki: Pki) -> None:
        from tlsfast import TLSEngine

        client_connection, server_connection = pki.pyopenssl_pair()
        self.client, self.server = TLSEngine(client_connection), TLSEngine(server_connection)
        client = EnginePeer(self.client)
        client.start()
        pump(client, EnginePeer(self.server))
        if not (self.client.handshake_done and self.server.handshake_done):
            raise RuntimeError("engine handshake did not complete")
        self.negotiated = _describe_pair(client_connection, server_connection)

    def run(self, collect: bool = False):
        send, receive, message = self.client.send, self.server.receive, self.message
        got, received = [], 0
        for _ in range(self.writes):
            plaintext = receive(send(message))
            received += len(plaintext)
            if collect:
                got.append(plaintext)
        return got if collect else received


class _PyOpenSSLPairTransfer(Transfer):
    """A transfer between two handshaken pyOpenSSL Connections."""

    def setup(self, pki: Pki) -> None:
        self.client, self.server = pki.pyopenssl_pair()
        client = PyOpenSSLPeer(self.client)
        client.start()
        pump(client, PyOpenSSLPeer(self.server))  # the client also reads the TLS 1.3 tickets
        self.negotiated = _describe_pair(self.client, self.server)


class PyOpenSSLTransfer(_PyOpenSSLPairTransfer):
    """What twisted.protocols.tls.TLSMemoryBIOProtocol does per write()."""

    name = "twisted"

    def run(self, collect: bool = False):
        from OpenSSL.SSL import WantReadError

        client, server, message = self.client, self.server, self.message
        length = len(message)
        got: list[bytes] | None = [] if collect else None
        received = 0
        for _ in range(self.writes):
            wire, done = [], 0
            while done < length:  # Twisted's TLS write, then its send-BIO flush
                done += client.send(message[done:done + 16384])
                try:
                    wire.append(client.bio_read(32768))
                except WantReadError:
                    pass
            server.bio_write(b"".join(wire))  # dataReceived -> its receive loop
            received += _read_all(server.recv, WantReadError, got)
            try:  # the send-BIO flush after the receive loop
                server.bio_read(32768)
            except WantReadError:
                pass
        return got if collect else received


class StdlibTransfer(Transfer):
    """CPython ssl.SSLObject + MemoryBIO, as asyncio's sslproto uses them."""

    name = "asyncio"

    def setup(self, pki: Pki) -> None:
        client_context, server_context = pki.stdlib_contexts()
        self.client_in, self.client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.server_in, self.server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = client_context.wrap_bio(self.client_in, self.client_out, server_hostname=HOSTNAME)
        self.server = server_context.wrap_bio(self.server_in, self.server_out, server_side=True)
        done = {"client": False, "server": False}
        for _ in range(20):
            for name, obj in (("client", self.client), ("server", self.server)):
                if not done[name]:
                    try:
                        obj.do_handshake()
                        done[name] = True
                    except ssl.SSLWantReadError:
                        pass
            self.server_in.write(self.client_out.read())
            self.client_in.write(self.server_out.read())
            if all(done.values()) and not self.client_out.pending and not self.server_out.pending:
                break
        try:  # read the tickets
            self.client.read(65536)
        except ssl.SSLWantReadError:
            pass
        from tlsfast.bench.client import describe_stdlib

        self.negotiated = dict(describe_stdlib(self.client), mtls=bool(self.server.getpeercert()),
                               openssl=ssl.OPENSSL_VERSION)

    def run(self, collect: bool = False):
        client, client_out, server, server_in = self.client, self.client_out, self.server, self.server_in
        message, WantRead = self.message, ssl.SSLWantReadError
        got: list[bytes] | None = [] if collect else None
        received = 0
        for _ in range(self.writes):
            client.write(message)
            server_in.write(client_out.read())
            received += _read_all(server.read, WantRead, got)
        return got if collect else received


class ReferenceTransfer(_PyOpenSSLPairTransfer):
    name = "c"

    def run(self, collect: bool = False):
        from tlsfast._engine import reference_transfer

        # The C loop only returns a count (it writes its own message).
        return reference_transfer(self.client, self.server, self.write_size, self.total)

    def verify(self) -> None:
        self.check(self.run())


@implementer(IProtocol, IHandshakeListener)
class _GlueApplication:
    """The application on either end of a glue pair: it notes the handshake
    and counts (or, while verifying, keeps) what it receives."""

    def __init__(self) -> None:
        self.handshook = False
        self.received = 0
        self.chunks: list[bytes] | None = None
        self.transport: Any = None

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport

    def connectionMade(self) -> None:
        pass

    def handshakeCompleted(self) -> None:
        self.handshook = True

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        if self.chunks is not None:
            self.chunks.append(data)

    def connectionLost(self, reason: Any) -> None:
        pass


@implementer(IOpenSSLClientConnectionCreator, IOpenSSLServerConnectionCreator)
class _OneConnection:
    """Hands a TLS protocol the Connection made beforehand."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        return self.connection

    def serverConnectionForTLS(self, tlsProtocol: Any) -> Any:
        return self.connection


class _GluePeer:
    """A TLS protocol over a StringTransport as a peer for :func:`pump` (the
    plaintext goes to its application, not back to the pump)."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def outgoing(self) -> bytes:
        data = self.protocol.transport.value()
        self.protocol.transport.clear()
        return data

    def receive(self, ciphertext: bytes) -> bytes:
        self.protocol.dataReceived(ciphertext)
        return b""


class GlueTransfer(Transfer):
    """
    A client and a server ``TLSMemoryBIOProtocol`` over ``StringTransport``s,
    the way tlsfast's own in-memory glue tests drive them (no reactor).  The
    pyOpenSSL Connections come from :class:`Pki`, handed to the factories by
    a connection creator, so they are pinned like every other contender's.
    """

    def classes(self) -> tuple[type, type]:  # pragma: no cover - abstract
        """(factory, protocol) classes of this glue."""
        raise NotImplementedError

    def setup(self, pki: Pki) -> None:
        from twisted.internet.protocol import Factory
        from twisted.internet.task import Clock
        from twisted.internet.testing import StringTransport

        factory_class, protocol_class = self.classes()
        connections = pki.pyopenssl_pair()
        clock = Clock()
        self.applications = _GlueApplication(), _GlueApplication()
        protocols = []
        for connection, application, is_client in zip(connections, self.applications, (True, False)):
            factory = factory_class(_OneConnection(connection), is_client, Factory(), clock=clock)
            protocol = protocol_class(factory, application)
            protocol.makeConnection(StringTransport())
            protocols.append(protocol)
        self.client, self.server = protocols
        pump(_GluePeer(self.client), _GluePeer(self.server))
        if not all(application.handshook for application in self.applications):
            raise RuntimeError(f"{self.name}: the glue handshake did not complete")
        self.negotiated = _describe_pair(*connections)

    def run(self, collect: bool = False):
        write, wire, deliver = self.client.write, self.client.transport, self.server.dataReceived
        application, message = self.applications[1], self.message
        application.received = 0
        application.chunks = [] if collect else None
        for _ in range(self.writes):
            write(message)
            deliver(wire.value())
            wire.clear()
        self.server.transport.clear()  # nothing is expected back; keep it from growing if it were
        return application.chunks if collect else application.received


class TLSFastGlueTransfer(GlueTransfer):
    name = "tlsfast-glue"

    def classes(self) -> tuple[type, type]:
        import tlsfast
        import tlsfast.twisted

        if not tlsfast.ACCELERATED:
            raise RuntimeError("tlsfast-glue: the tlsfast engine is not available here")
        return tlsfast.twisted.TLSMemoryBIOFactory, tlsfast.twisted.TLSMemoryBIOProtocol


class TwistedGlueTransfer(GlueTransfer):
    name = "twisted-glue"

    def classes(self) -> tuple[type, type]:
        from twisted.protocols import tls

        import tlsfast.twisted

        if tlsfast.twisted.installed():  # then twisted.protocols.tls names tlsfast's classes
            raise RuntimeError("twisted-glue: tlsfast is installed into Twisted in this process")
        return tls.TLSMemoryBIOFactory, tls.TLSMemoryBIOProtocol


TRANSFERS: dict[str, type[Transfer]] = {
    cls.name: cls for cls in (EngineTransfer, PyOpenSSLTransfer, StdlibTransfer, ReferenceTransfer,
                              TLSFastGlueTransfer, TwistedGlueTransfer)}


def make(name: str, write_size: int, total: int | None = None, pki: Pki | None = None) -> Transfer:
    """A ready (handshaken) transfer of contender ``name`` (on :func:`default_pki`
    unless given one)."""
    return TRANSFERS[name](default_pki() if pki is None else pki, write_size, total)


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def measure(pki: Pki, sizes: list[int], contenders: list[str], rounds: int, seconds: float | None,
            rebuild_every: int = 5, emit=_emit, *, seed: int | None = None, make=None,
            collect_each_round: bool = False, verify_at_end: bool = False) -> None:
    """
    Interleaved rounds; ``emit`` gets one dict per sample.  ``make(name,
    size)`` builds a transfer (default: this module's classes by name);
    ``collect_each_round`` runs the garbage collector between rounds, outside
    the timing; ``verify_at_end`` compares the bytes once more after the last
    round.  (:mod:`tlsfast.bench.engine_report` uses the last two.)
    """
    rng = random.Random(seed)
    if make is None:
        def make(name, size):
            return TRANSFERS[name](pki, size)

    def build(verify: bool):
        """Fresh connection pairs for every (contender, size), made in a random
        order with random-sized allocations in between, so that buffer
        placement differs from build to build: at 16 KiB, one fixed layout can
        put the C loop at 0.7x or 1.4x the engine.  The padding must live as
        long as the transfers."""
        transfers, padding = {}, []
        keys = [(name, size) for size in sizes for name in contenders]
        rng.shuffle(keys)
        for name, size in keys:
            padding.append(bytearray(rng.randrange(64, 96 * 1024)))
            transfer = make(name, size)
            transfer.verify() if verify else transfer.check(transfer.run())  # also a warm-up
            transfers[name, size] = transfer
        return transfers, padding

    transfers, padding = build(verify=True)
    for (name, size), transfer in sorted(transfers.items(), key=lambda item: item[0][1]):
        emit({"type": "negotiated", "contender": name, "write_size": size, **transfer.negotiated})
    start = time.monotonic()
    done = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while done < rounds and (seconds is None or time.monotonic() - start < seconds):
            if rebuild_every and done and done % rebuild_every == 0:
                transfers = padding = None
                gc.collect()
                transfers, padding = build(verify=False)
            for index, size in enumerate(sizes):
                k = (done + index) % len(contenders)
                for name in contenders[k:] + contenders[:k]:
                    transfer = transfers[name, size]
                    faults0 = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
                    cpu0, wall0 = time.thread_time(), time.perf_counter()
                    received = transfer.run()
                    wall1, cpu1 = time.perf_counter(), time.thread_time()
                    faults1 = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
                    transfer.check(received)
                    emit({"type": "sample", "round": done, "contender": name, "write_size": size,
                          "bytes": transfer.total, "cpu_seconds": cpu1 - cpu0, "wall_seconds": wall1 - wall0,
                          "minor_faults": faults1 - faults0})
            done += 1
            if collect_each_round:
                gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    if verify_at_end:
        for transfer in transfers.values():
            transfer.verify()
    emit({"type": "done", "rounds": done, "seconds": time.monotonic() - start})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certs", required=True, help="directory from tlsfast.bench.certs.write_pki")
    parser.add_argument("--sizes", default="64,1024,16384,65536")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=None, help="stop starting rounds after this long")
    parser.add_argument("--rebuild-every", type=int, default=5)
    add_arguments(parser)
    args = parser.parse_args(argv)
    pki = Pki(args.certs, from_arguments(args))
    measure(pki, [int(s) for s in args.sizes.split(",")], args.contenders.split(","),
            args.rounds, args.seconds, args.rebuild_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
