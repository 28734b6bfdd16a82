"""
The ``engine`` scenario: in-memory client->server bulk transfer, no sockets.

Every contender moves the same application data from a client to a server in
writes of one size; the ciphertext goes from the client's memory BIO straight
into the server's.  Ported from the repository's ``bench/transfer.py`` and
``bench/report.py`` (which are not shipped), with certificates from
:mod:`tlsfast.bench.certs` instead of the test PKI:

    tlsfast    tlsfast.TLSEngine on both ends: server.receive(client.send(m))
    twisted    pyOpenSSL Connections driven as twisted.protocols.tls does:
               send() in 16 KiB slices each followed by bio_read(2**15); the
               server bio_write()s, recv(2**15) until WantReadError, then one
               more bio_read(2**15) (_flushSendBIO)
    asyncio    stdlib ssl.SSLObject over MemoryBIOs, as asyncio's sslproto
               uses them (system OpenSSL, a different build than cryptography's)
    c          tlsfast._engine.reference_transfer: the same SSL_write /
               BIO_read / BIO_write / SSL_read loop in C without the GIL, on
               two pyOpenSSL Connections (the limit the engine aims at)

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
import gc
import json
import os
import random
import resource
import ssl
import sys
import time

from tlsfast.bench.client import describe_stdlib, pin_stdlib
from tlsfast.bench.tlsconfig import TLSParams, add_arguments, describe_pyopenssl, from_arguments, pin_context

KiB = 1024
MiB = 1024 * KiB
HOSTNAME = "example.com"
CONTENDERS = ("tlsfast", "twisted", "asyncio", "c")
LABELS = {"tlsfast": "tlsfast engine", "twisted": "pyOpenSSL loop (stock Twisted)",
          "asyncio": "stdlib SSLObject (asyncio)", "c": "C reference loop"}


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

    def pyopenssl_pair(self):
        from OpenSSL import SSL

        client_context, server_context = self.pyopenssl_contexts()
        client = SSL.Connection(client_context, None)
        client.set_connect_state()
        client.set_tlsext_host_name(HOSTNAME.encode())
        server = SSL.Connection(server_context, None)
        server.set_accept_state()
        return client, server

    def stdlib_contexts(self):
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


def _pyopenssl_handshake(client, server) -> None:
    """Move ciphertext both ways until both Connections are done."""
    from OpenSSL import SSL

    def step(connection):
        try:
            connection.do_handshake()
        except SSL.WantReadError:
            pass

    def drain(connection) -> bytes:
        out = []
        while True:
            try:
                out.append(connection.bio_read(65536))
            except SSL.WantReadError:
                return b"".join(out)

    step(client)
    for _ in range(20):
        moved = False
        for sender, receiver in ((client, server), (server, client)):
            data = drain(sender)
            if data:
                moved = True
                receiver.bio_write(data)
                step(receiver)
        if not moved:
            break
    # TLS 1.3 tickets sit in the client's read BIO until it reads
    try:
        client.recv(65536)
    except SSL.WantReadError:
        pass


def _describe_pair(client, server) -> dict:
    """What a pyOpenSSL pair negotiated, as the client sees it, and whether the
    server got a client certificate."""
    return dict(describe_pyopenssl(client), mtls=server.get_peer_certificate() is not None)


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
        self.client.do_handshake()
        for _ in range(20):
            moved = False
            for sender, receiver in ((self.client, self.server), (self.server, self.client)):
                data = sender.outgoing()
                if data:
                    moved = True
                    receiver.receive(data)
            if not moved:
                break
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


class PyOpenSSLTransfer(Transfer):
    """What twisted.protocols.tls.TLSMemoryBIOProtocol does per write()."""

    name = "twisted"

    def setup(self, pki: Pki) -> None:
        self.client, self.server = pki.pyopenssl_pair()
        _pyopenssl_handshake(self.client, self.server)
        self.negotiated = _describe_pair(self.client, self.server)

    def run(self, collect: bool = False):
        from OpenSSL.SSL import WantReadError

        client, server, message = self.client, self.server, self.message
        length = len(message)
        got, received = [], 0
        for _ in range(self.writes):
            wire, done = [], 0
            while done < length:  # TLSMemoryBIOProtocol._write + _flushSendBIO
                done += client.send(message[done:done + 16384])
                try:
                    wire.append(client.bio_read(32768))
                except WantReadError:
                    pass
            server.bio_write(b"".join(wire))  # dataReceived -> _flushReceiveBIO
            while True:
                try:
                    plaintext = server.recv(32768)
                except WantReadError:
                    break
                received += len(plaintext)
                if collect:
                    got.append(plaintext)
            try:  # _flushSendBIO after the receive loop
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
        self.negotiated = dict(describe_stdlib(self.client), mtls=bool(self.server.getpeercert()),
                               openssl=ssl.OPENSSL_VERSION)

    def run(self, collect: bool = False):
        client, client_out, server, server_in = self.client, self.client_out, self.server, self.server_in
        message, WantRead = self.message, ssl.SSLWantReadError
        got, received = [], 0
        for _ in range(self.writes):
            client.write(message)
            server_in.write(client_out.read())
            while True:
                try:
                    plaintext = server.read(32768)
                except WantRead:
                    break
                received += len(plaintext)
                if collect:
                    got.append(plaintext)
        return got if collect else received


class ReferenceTransfer(Transfer):
    name = "c"

    def setup(self, pki: Pki) -> None:
        self.client, self.server = pki.pyopenssl_pair()
        _pyopenssl_handshake(self.client, self.server)
        self.negotiated = _describe_pair(self.client, self.server)

    def run(self, collect: bool = False):
        from tlsfast._engine import reference_transfer

        # The C loop only returns a count (it writes its own message).
        return reference_transfer(self.client, self.server, self.write_size, self.total)

    def verify(self) -> None:
        self.check(self.run())


TRANSFERS = {cls.name: cls for cls in (EngineTransfer, PyOpenSSLTransfer, StdlibTransfer, ReferenceTransfer)}


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
    round.  (bench/report.py uses all three.)
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
