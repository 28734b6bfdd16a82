"""
In-memory client->server bulk transfer, one class per contender.

Every contender moves ``total`` bytes of application data from a client to a
server in writes of ``write_size`` bytes, over the same TLS 1.3 suite
(TLS_AES_128_GCM_SHA256) and key-exchange group (X25519), with no sockets: the
ciphertext goes from the client's memory BIO straight to the server's.

    engine     tlsfast.TLSEngine on both ends: client.send(), server.receive()
    pyopenssl  pyOpenSSL Connections driven as twisted.protocols.tls does
               today: send() in 16 KiB slices each followed by bio_read(2**15);
               the server bio_write()s what arrived, recv(2**15) until
               WantReadError, then tries bio_read(2**15) once (_flushSendBIO)
    stdlib     ssl.SSLObject over MemoryBIOs (CPython's ssl, *system* OpenSSL
               3.0 -- a different, slower build than cryptography's 4.0)
    reference  tlsfast._engine.reference_transfer: the same SSL_write /
               BIO_read / BIO_write / SSL_read loop in C without the GIL, on
               two pyOpenSSL Connections (the limit the engine aims at)

``run()`` is the timed part.  Like an application that consumes what it
receives, it keeps only a count of the plaintext bytes the server got
(``check()`` compares it to ``total`` after timing).  Keeping every chunk
alive for the whole operation costs the Python contenders about one page fault
per 4 KiB received (glibc trims the freed heap after each op and faults it back
in), up to 40 % at 16 KiB writes, which is not what is being compared.
``verify()`` runs the same loop untimed with ``collect=True`` and compares
the received bytes with what was sent, byte for byte.
"""

from __future__ import annotations

import os
import ssl

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi, lib as _lib

from tests.peers import (
    EnginePeer,
    PyOpenSSLPeer,
    StdlibPeer,
    client_context,
    pump,
    pyopenssl_connection,
    server_context,
)
from tlsfast import TLSEngine
from tlsfast._engine import reference_transfer

SUITE = "TLS_AES_128_GCM_SHA256"
GROUP = b"X25519"
KiB = 1024
MiB = 1024 * KiB

WRITE_SIZES = (64, 1 * KiB, 16 * KiB, 64 * KiB)

# Application bytes moved per timed operation.  Small writes get less so one
# pyOpenSSL round stays in the tens of milliseconds.
TOTALS = {64: 256 * KiB, 1 * KiB: 1 * MiB, 16 * KiB: 4 * MiB, 64 * KiB: 4 * MiB}

CONTENDERS = ("engine", "pyopenssl", "stdlib", "reference")


def pin_group(context: SSL.Context, group: bytes = GROUP) -> None:
    """pyOpenSSL 26 has no Context.set_groups; its cffi binding exposes
    SSL_CTX_set1_curves_list (the old name of SSL_CTX_set1_groups_list)."""
    if _lib.SSL_CTX_set1_curves_list(context._context, group) != 1:
        raise RuntimeError(f"cannot restrict key exchange to {group!r}")


_CONTEXTS: dict[str, SSL.Context] = {}


def contexts() -> tuple[SSL.Context, SSL.Context]:
    """(client, server) pyOpenSSL contexts pinned to TLS 1.3, SUITE, GROUP."""
    if not _CONTEXTS:
        _CONTEXTS["client"] = client_context("1.3", "aesgcm")
        _CONTEXTS["server"] = server_context("ecdsa", "1.3", "aesgcm")
        for context in _CONTEXTS.values():
            pin_group(context)
    return _CONTEXTS["client"], _CONTEXTS["server"]


def group_name(connection: SSL.Connection) -> str:
    name = _lib.SSL_get0_group_name(connection._ssl)
    return _ffi.string(name).decode() if name != _ffi.NULL else "?"


def _message(write_size: int) -> bytes:
    return os.urandom(write_size)


class Transfer:
    name = "?"

    def __init__(self, write_size: int, total: int | None = None):
        self.write_size = write_size
        self.total = TOTALS[write_size] if total is None else total
        if self.total % write_size:
            raise ValueError("total must be a multiple of write_size")
        self.writes = self.total // write_size
        self.message = _message(write_size)
        self.info: dict[str, str] = {}
        self.setup()

    def setup(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, collect=False):  # pragma: no cover - abstract
        """The timed part: move ``total`` bytes.  Returns the number of
        plaintext bytes the server got, or with ``collect`` the chunks."""
        raise NotImplementedError

    def check(self, received: int) -> None:
        """Cheap check of a timed run: the server got exactly ``total`` bytes."""
        if received != self.total:
            raise AssertionError(f"{self.name}/{self.write_size}: server got {received} "
                                 f"bytes, expected {self.total}")

    def verify(self) -> None:
        """Untimed run that keeps the plaintext and compares it byte for byte."""
        got = b"".join(self.run(collect=True))
        if got != self.message * self.writes:
            raise AssertionError(
                f"{self.name}/{self.write_size}: server got {len(got)} bytes, expected "
                f"{self.total} bytes of the same content")


def _pyopenssl_pair() -> tuple[SSL.Connection, SSL.Connection]:
    client_ctx, server_ctx = contexts()
    client = pyopenssl_connection(client_ctx, False, b"example.com")
    server = pyopenssl_connection(server_ctx, True)
    return client, server


def _describe(connection: SSL.Connection) -> dict[str, str]:
    return {"cipher": connection.get_cipher_name(),
            "group": group_name(connection),
            "version": connection.get_protocol_version_name()}


class EngineTransfer(Transfer):
    name = "engine"

    def setup(self) -> None:
        client_conn, server_conn = _pyopenssl_pair()
        self.client = TLSEngine(client_conn)
        self.server = TLSEngine(server_conn)
        a, b = EnginePeer(self.client), EnginePeer(self.server)
        a.start()
        pump(a, b)
        assert self.client.handshake_done and self.server.handshake_done
        self.info = _describe(client_conn)

    def run(self, collect=False):
        send = self.client.send
        receive = self.server.receive
        message = self.message
        got = []
        received = 0
        for _ in range(self.writes):
            plaintext = receive(send(message))
            received += len(plaintext)
            if collect:
                got.append(plaintext)
        return got if collect else received


class PyOpenSSLTransfer(Transfer):
    """What twisted.protocols.tls.TLSMemoryBIOProtocol does per write()."""

    name = "pyopenssl"

    def setup(self) -> None:
        self.client, self.server = _pyopenssl_pair()
        a, b = PyOpenSSLPeer(self.client), PyOpenSSLPeer(self.server)
        a.start()
        pump(a, b)
        self.info = _describe(self.client)

    def run(self, collect=False):
        client, server = self.client, self.server
        message = self.message
        length = len(message)
        WantReadError = SSL.WantReadError
        got = []
        received = 0
        for _ in range(self.writes):
            # client: TLSMemoryBIOProtocol._write + _flushSendBIO
            wire = []
            done = 0
            while done < length:
                done += client.send(message[done:done + 16384])
                try:
                    wire.append(client.bio_read(32768))
                except WantReadError:
                    pass
            # server: dataReceived -> bio_write, _flushReceiveBIO
            server.bio_write(b"".join(wire))
            while True:
                try:
                    plaintext = server.recv(32768)
                except WantReadError:
                    break
                received += len(plaintext)  # ProtocolWrapper.dataReceived
                if collect:
                    got.append(plaintext)
            try:  # _flushSendBIO after the receive loop
                server.bio_read(32768)
            except WantReadError:
                pass
        return got if collect else received


class StdlibTransfer(Transfer):
    """CPython ssl.SSLObject + MemoryBIO (as asyncio's sslproto uses them)."""

    name = "stdlib"

    def setup(self) -> None:
        a, b = StdlibPeer(server=False), StdlibPeer(server=True)
        a.start()
        pump(a, b)
        assert a.handshake_done and b.handshake_done
        self.client, self.server = a, b
        cipher = a.obj.cipher()
        self.info = {"cipher": cipher[0], "version": cipher[1],
                     "group": "system default (X25519 first in OpenSSL 3.0)",
                     "openssl": ssl.OPENSSL_VERSION}

    def run(self, collect=False):
        client_obj = self.client.obj
        client_out = self.client.outgoing_bio
        server_obj = self.server.obj
        server_in = self.server.incoming
        message = self.message
        WantRead = ssl.SSLWantReadError
        got = []
        received = 0
        for _ in range(self.writes):
            client_obj.write(message)
            server_in.write(client_out.read())
            while True:
                try:
                    plaintext = server_obj.read(32768)
                except WantRead:
                    break
                received += len(plaintext)
                if collect:
                    got.append(plaintext)
        return got if collect else received


class ReferenceTransfer(Transfer):
    name = "reference"

    def setup(self) -> None:
        self.client, self.server = _pyopenssl_pair()
        a, b = PyOpenSSLPeer(self.client), PyOpenSSLPeer(self.server)
        a.start()
        pump(a, b)
        self.info = _describe(self.client)

    def run(self, collect=False):
        # The C loop discards the plaintext (it fills its message with
        # n & 0xFF, so content cannot be compared here); check() compares
        # the count it returns.
        return reference_transfer(self.client, self.server, self.write_size, self.total)

    def verify(self) -> None:
        self.check(self.run())


TRANSFERS = {cls.name: cls for cls in
             (EngineTransfer, PyOpenSSLTransfer, StdlibTransfer, ReferenceTransfer)}


def make(contender: str, write_size: int, total: int | None = None) -> Transfer:
    return TRANSFERS[contender](write_size, total)
