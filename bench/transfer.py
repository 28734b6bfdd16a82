"""
In-memory client->server bulk transfer, one class per contender, for the
pytest-benchmark suite and ``bench/report.py``.

The contenders themselves live in :mod:`tlsfast.bench.engine` (shipped with
the package; ``tlsfast bench engine`` runs them too); this module maps the
benchmark suite's names onto them and gives them one throwaway PKI:

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

import atexit
import shutil
import tempfile

from OpenSSL import SSL

from tlsfast.bench import engine as contenders
from tlsfast.bench.certs import write_pki
from tlsfast.bench.tlsconfig import DEFAULT_CIPHER, DEFAULT_GROUP, TLSParams

SUITE = DEFAULT_CIPHER
GROUP = DEFAULT_GROUP.encode()
KiB = 1024

WRITE_SIZES = (64, 1 * KiB, 16 * KiB, 64 * KiB)
# Application bytes moved per timed operation (small writes get less, so one
# pyOpenSSL round stays in the tens of milliseconds).
TOTALS = {size: contenders.total_for(size) for size in WRITE_SIZES}

CONTENDERS = ("engine", "pyopenssl", "stdlib", "reference")
_CLASSES = {
    "engine": contenders.EngineTransfer,
    "pyopenssl": contenders.PyOpenSSLTransfer,
    "stdlib": contenders.StdlibTransfer,
    "reference": contenders.ReferenceTransfer,
}

_PKI: list[contenders.Pki] = []


def pki() -> contenders.Pki:
    """One CA and server certificate per process, in a temporary directory."""
    if not _PKI:
        directory = tempfile.mkdtemp(prefix="tlsfast-bench-")
        atexit.register(shutil.rmtree, directory, True)
        write_pki(directory)
        _PKI.append(contenders.Pki(directory, TLSParams()))
    return _PKI[0]


def contexts() -> tuple[SSL.Context, SSL.Context]:
    """(client, server) pyOpenSSL contexts pinned to TLS 1.3, SUITE, GROUP."""
    return pki().pyopenssl_contexts()


def make(contender: str, write_size: int, total: int | None = None) -> contenders.Transfer:
    """A ready (handshaken) transfer; ``info`` is what it negotiated."""
    transfer = _CLASSES[contender](pki(), write_size, total)
    transfer.name = contender
    transfer.info = transfer.negotiated
    return transfer
