"""
Side-by-side in-memory bulk transfer at 64 B, 1 KiB, 16 KiB and 64 KiB
writes: the tlsfast engine vs a pyOpenSSL loop (what Twisted does today) vs
stdlib SSLObject vs the C reference loop, and the Twisted glue around them
(tlsfast's and stock Twisted's TLSMemoryBIOProtocol pairs over
StringTransports).  The contenders are tlsfast.bench.engine's (see its
docstring); docs/benchmarks.md has results.

    make bench-engine                           # pytest-benchmark tables
    make bench-report                           # interleaved rounds, markdown tables
    .venv/bin/python -m pytest bench --benchmark-disable -q   # smoke (CI)

Each benchmark body moves total_for(write_size) bytes of application data and
counts what the server received; the count is checked after timing, and the
content is compared byte for byte in untimed runs before and after (the C loop
returns only a count).
"""

from __future__ import annotations

import warnings

import pytest
from OpenSSL import SSL

from tlsfast import TLSEngine
from tlsfast.bench import engine as E
from tlsfast.bench.runner import size_label
from tlsfast.bench.tlsconfig import DEFAULT_CIPHER, DEFAULT_GROUP


@pytest.mark.parametrize("contender", E.CONTENDERS + E.GLUE_CONTENDERS)
@pytest.mark.parametrize("write_size", E.WRITE_SIZES, ids=size_label)
def test_transfer(benchmark, write_size, contender):
    transfer = E.make(contender, write_size)
    if contender != "asyncio":
        assert transfer.negotiated["cipher"] == DEFAULT_CIPHER, transfer.negotiated
        assert transfer.negotiated["group"].lower() == DEFAULT_GROUP.lower(), transfer.negotiated
    elif transfer.negotiated["cipher"] != DEFAULT_CIPHER and not benchmark.disabled:
        warnings.warn(f"stdlib negotiated {transfer.negotiated['cipher']}: run with "
                      "OPENSSL_CONF=bench/openssl.cnf to pin it (see docs/benchmarks.md)", stacklevel=2)
    benchmark.group = f"write {size_label(write_size)}"
    benchmark.extra_info.update(transfer.negotiated)
    benchmark.extra_info.update(contender=contender, write_size=write_size,
                                bytes_per_op=transfer.total)
    transfer.verify()  # content check, untimed (also the warm-up)
    received = benchmark(transfer.run)
    transfer.check(received)
    if not benchmark.disabled:
        transfer.verify()  # the connection still delivers exactly the bytes


def test_bind_engine(benchmark):
    """TLSEngine(conn) on an existing Connection: should be a few microseconds."""
    connection = E.default_pki().pyopenssl_connection(server=False)
    benchmark.group = "bind"
    engine = benchmark(TLSEngine, connection)
    assert engine.connection is connection


def test_bind_baseline_connection(benchmark):
    """For scale: what making the pyOpenSSL Connection itself costs."""
    client_ctx, _ = E.default_pki().pyopenssl_contexts()
    benchmark.group = "bind"
    connection = benchmark(SSL.Connection, client_ctx, None)
    assert connection.get_context() is client_ctx
