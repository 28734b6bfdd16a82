"""
The in-memory benchmark harness (tlsfast.bench.engine, engine_report): every
contender moves the bytes it claims, the glue pairs run the classes they
name, and the report's paired ratios and tables come from the samples.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from twisted.protocols import tls

import tlsfast
import tlsfast.twisted
from tlsfast.bench import engine, engine_report
from tlsfast.bench.tlsconfig import DEFAULT_CIPHER

ALL = engine.CONTENDERS + engine.GLUE_CONTENDERS


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [64, 16384])
def test_every_contender_delivers_the_bytes(name, size):
    if name.startswith("tlsfast") and not tlsfast.ACCELERATED:
        pytest.skip("tlsfast engine unavailable")
    transfer = engine.make(name, size, 8 * size)
    assert transfer.writes == 8
    transfer.verify()  # byte for byte
    transfer.check(transfer.run())
    assert transfer.run(collect=True)  # the chunks, not a count
    if name != "asyncio":  # stdlib ssl is pinned through OPENSSL_CONF only
        assert transfer.negotiated["cipher"] == DEFAULT_CIPHER


def test_a_short_count_is_caught():
    transfer = engine.make("tlsfast-glue", 64, 640)
    with pytest.raises(AssertionError, match="server got 639 bytes"):
        transfer.check(639)


def test_the_glue_pairs_are_the_classes_they_name():
    if not tlsfast.ACCELERATED:
        pytest.skip("tlsfast engine unavailable")
    ours = engine.make("tlsfast-glue", 64, 64)
    stock = engine.make("twisted-glue", 64, 64)
    for protocol in (ours.client, ours.server):
        assert isinstance(protocol, tlsfast.twisted.TLSMemoryBIOProtocol)
    for protocol in (stock.client, stock.server):
        assert type(protocol) is tls.TLSMemoryBIOProtocol


def test_stock_glue_refuses_an_installed_tlsfast():
    if not tlsfast.twisted.install():
        pytest.skip("tlsfast engine unavailable")
    try:
        with pytest.raises(RuntimeError, match="installed"):
            engine.make("twisted-glue", 64, 64)
    finally:
        tlsfast.twisted.uninstall()


def _samples(cpu: dict[str, list[float]]) -> dict:
    """Samples (cpu, wall, faults) at one size from per-contender CPU times."""
    return {(name, 64): [(t, 2 * t, 0) for t in times] for name, times in cpu.items()}


def test_ratios_are_medians_of_per_round_pairs():
    # Round by round the glue takes 4x, 2x, 5x the C loop's time; the medians
    # of the two contenders' rates would give another figure (0.5 / 0.25 = 2).
    samples = _samples({"c": [1.0, 4.0, 2.0], "tlsfast-glue": [4.0, 8.0, 10.0]})
    summary = engine_report.summarise(samples, {64: 1_000_000}, [64], ["c", "tlsfast-glue"])
    row = summary["tlsfast-glue", 64]
    assert row["vs_c"] == pytest.approx(0.25)
    assert row["vs_c_wall"] == pytest.approx(0.25)
    assert row["cpu_mbps"] == pytest.approx(0.125)
    assert summary["c", 64]["vs_tlsfast-glue"] == pytest.approx(4.0)


def test_the_glue_table_marks_the_targets():
    samples = _samples({"c": [1.0] * 4, "tlsfast-glue": [1.9] * 4, "twisted-glue": [10.0] * 4,
                        "tlsfast": [1.1] * 4})
    contenders = ["tlsfast", "c", "tlsfast-glue", "twisted-glue"]
    summary = engine_report.summarise(samples, {64: 1_000_000}, [64], contenders)
    table = engine_report.table(summary, [64], ["tlsfast-glue", "twisted-glue", "c"], engine_report.GLUE_RATIOS)
    header, _, row = table.splitlines()
    assert "tlsfast glue / C" in header and "stock glue / C" in header
    assert "| 0.53 ✓ | 0.10 | 5.26 |" in row  # 1/1.9 >= 0.5 at 64 B; no target for stock
    targets = engine_report.glue_targets_table(summary, [64])
    assert "| 64 B | 0.526 ✓ (≥ 0.5; 0.16) | 0.100 (0.06) | 1.73 |" in targets


def test_report_from_pytest_benchmark_json(tmp_path):
    benchmarks = [{"extra_info": {"contender": name, "write_size": 1024, "bytes_per_op": 1_000_000},
                   "stats": {"median": seconds}}
                  for name, seconds in (("c", 0.01), ("tlsfast-glue", 0.02), ("twisted-glue", 0.1))]
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": benchmarks + [{"extra_info": {}, "stats": {"median": 1}}]}))
    summary, sizes, contenders = engine_report.from_pytest_json(str(path))
    assert sizes == [1024]
    assert contenders == ["c", "tlsfast-glue", "twisted-glue"]
    assert summary["tlsfast-glue", 1024]["vs_c"] == pytest.approx(0.5)
    assert summary["tlsfast-glue", 1024]["vs_twisted-glue"] == pytest.approx(5.0)


def test_a_short_interleaved_run_prints_engine_and_glue_tables():
    done = subprocess.run(
        [sys.executable, "-m", "tlsfast.bench.engine_report", "--rounds", "2", "--seconds", "20", "--sizes", "64",
         "--rebuild-every", "1", "--contenders", "tlsfast,c,tlsfast-glue,twisted-glue"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("2 interleaved rounds in ")
    assert "new connection pairs every 1 rounds" in out
    assert "| tlsfast engine MB/s | C reference loop MB/s | engine / C |" in out
    assert "| tlsfast glue (TLSMemoryBIOProtocol) MB/s | stock Twisted glue (TLSMemoryBIOProtocol) MB/s" in out
    assert "The glue in memory against issue #14's targets" in out


def test_an_unknown_contender_is_one_line():
    done = subprocess.run([sys.executable, "-m", "tlsfast.bench.engine_report", "--contenders", "tlsfast,nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("unknown contender 'nope' (choose from tlsfast, twisted, "
                                                         "asyncio, c, tlsfast-glue, twisted-glue)")
