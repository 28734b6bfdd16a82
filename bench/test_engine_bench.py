"""
Side-by-side in-memory bulk transfer: tlsfast engine vs a pyOpenSSL loop (what
Twisted does today) vs stdlib SSLObject vs the C reference loop, at 64 B,
1 KiB, 16 KiB and 64 KiB writes.  See bench/transfer.py for what each
contender does and docs/benchmarks.md for results.

    make bench                                  # pytest-benchmark tables
    .venv/bin/python bench/report.py            # interleaved rounds, markdown table
    .venv/bin/python -m pytest bench --benchmark-disable -q   # smoke (CI)

Each benchmark body moves TOTALS[write_size] bytes of application data and
counts what the server received; the count is checked after timing, and the
content is compared byte for byte in untimed runs before and after (the C loop
returns only a count).
"""

from __future__ import annotations

import warnings

import pytest
from OpenSSL import SSL

from bench import transfer as T
from tests.peers import pyopenssl_connection
from tlsfast import TLSEngine


def _label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


@pytest.mark.parametrize("contender", T.CONTENDERS)
@pytest.mark.parametrize("write_size", T.WRITE_SIZES, ids=_label)
def test_transfer(benchmark, write_size, contender):
    transfer = T.make(contender, write_size)
    if contender != "stdlib":
        assert transfer.info["cipher"] == T.SUITE, transfer.info
        assert transfer.info["group"].lower() == T.GROUP.decode().lower(), transfer.info
    if contender == "stdlib" and transfer.info["cipher"] != T.SUITE and not benchmark.disabled:
        warnings.warn(f"stdlib negotiated {transfer.info['cipher']}: run with "
                      "OPENSSL_CONF=bench/openssl.cnf to pin it (see docs/benchmarks.md)", stacklevel=2)
    benchmark.group = f"write {_label(write_size)}"
    benchmark.extra_info.update(transfer.info)
    benchmark.extra_info.update(contender=contender, write_size=write_size,
                                bytes_per_op=transfer.total)
    transfer.verify()  # content check, untimed (also the warm-up)
    received = benchmark(transfer.run)
    transfer.check(received)
    if not benchmark.disabled:
        transfer.verify()  # the connection still delivers exactly the bytes


def test_bind_engine(benchmark):
    """TLSEngine(conn) on an existing Connection: should be a few microseconds."""
    client_ctx, _ = T.contexts()
    connection = pyopenssl_connection(client_ctx, False, b"example.com")
    benchmark.group = "bind"
    engine = benchmark(TLSEngine, connection)
    assert engine.connection is connection


def test_bind_baseline_connection(benchmark):
    """For scale: what making the pyOpenSSL Connection itself costs."""
    client_ctx, _ = T.contexts()
    benchmark.group = "bind"
    connection = benchmark(SSL.Connection, client_ctx, None)
    assert connection._into_ssl is not None
