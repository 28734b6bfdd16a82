"""
``tlsfast bench --sizes/--conns`` sweeps and the per-operation latency
percentiles of the echo and handshake load generators: the pure parts
directly, then one short sweep end to end.
"""

from __future__ import annotations

import json

import pytest

from tests.test_bench_cli import HAVE_MATPLOTLIB, one_line_error, tlsfast_bench
from tlsfast._cliutil import UsageError
from tlsfast.bench import report
from tlsfast.bench.cli import parse_sizes
from tlsfast.bench.client import percentiles
from tlsfast.bench.runner import Result, Run, Sample, Settings


def test_parse_sizes():
    assert parse_sizes("--sizes", "64,1k,16k,64k") == [64, 1024, 16384, 65536]
    assert parse_sizes("--sizes", "1M, 512") == [512, 1 << 20]
    assert parse_sizes("--conns", "100,1,10,10", suffixes=False) == [1, 10, 100]
    for bad in ("0", "x", "1.5k", "", "64,,1k", "-1"):
        with pytest.raises(UsageError, match="--sizes"):
            parse_sizes("--sizes", bad)
    with pytest.raises(UsageError, match="--conns: '1k' is not one of positive integers$"):
        parse_sizes("--conns", "1k", suffixes=False)


def test_points():
    run = Run(Settings(scenarios=["echo", "bulk", "handshake"], stacks=["twisted"], size=64, write_size=65536,
                       connections=1, sizes=[64, 1024], conns=[1, 10]))
    assert run.points("echo") == [(" size=64", 64, 1, {"axis": "size", "value": 64}),
                                  (" size=1024", 1024, 1, {"axis": "size", "value": 1024}),
                                  (" conns=1", 64, 1, {"axis": "connections", "value": 1}),
                                  (" conns=10", 64, 10, {"axis": "connections", "value": 10})]
    assert [p[1:3] for p in run.points("bulk")] == [(64, 1), (1024, 1), (65536, 1), (65536, 10)]
    assert [p[0] for p in run.points("handshake")] == [" conns=1", " conns=10"]  # no size in a handshake
    plain = Run(Settings(scenarios=["echo"], stacks=["twisted"], size=128, connections=3))
    assert plain.points("echo") == [("", 128, 3, None)]
    assert run.planned_steps() == 5 * (4 + 4 + 2 * 2)  # reps x points (handshake: full and resumed)


def test_percentiles():
    assert percentiles([]) == {}
    latencies = [i / 1e6 for i in range(1, 1001)]  # 1..1000 µs
    p = percentiles(list(reversed(latencies)))
    assert p["p50"] == pytest.approx(501)  # nearest rank: index round(0.5 * 999) = 500
    assert p["p99"] == pytest.approx(990)
    assert p["p99.9"] == pytest.approx(999)
    assert percentiles([0.002]) == {"p50": 2000, "p99": 2000, "p99.9": 2000}


def test_latency_summary_and_columns():
    result = Result("echo", "echo", "echo", "message", "server process")
    for rep, p50 in enumerate((100.0, 300.0, 200.0)):
        result.samples.append(Sample("twisted", 10, 1.0, 0.01, rep,
                                     latency_us={"p50": p50, "p99": p50 * 2, "p99.9": p50 * 3}))
    row = result.summary()["twisted"]
    assert (row["latency_p50_us"], row["latency_p99_us"], row["latency_p99.9_us"]) == (200, 400, 600)
    header, body = report.rows(result)
    assert header[-3:] == ["p50 µs", "p99 µs", "p99.9 µs"] and body[0][-3:] == ["200", "400", "600"]
    without = Result("bulk", "bulk", "bulk", "MiB", "server process", samples=[Sample("twisted", 1, 1.0, 0.01)])
    assert "p50 µs" not in report.rows(without)[0]


def test_bad_sweep_values():
    one_line_error(tlsfast_bench("echo", "--sizes", "64,big"), 2, "--sizes: 'big' is not one of positive integers")
    one_line_error(tlsfast_bench("echo", "--conns", "0"), 2, "--conns: '0' is not one of positive integers")


def test_a_short_sweep(tmp_path):
    out, png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    plot = ["--plot", str(png)] if HAVE_MATPLOTLIB else []
    done = tlsfast_bench("echo", "handshake", "bulk", "--no-resume", "--stacks", "twisted,tlsfast", "--reps", "1",
                         "--seconds", "0.1", "--megabytes", "1", "--sizes", "64,1k", "--conns", "1,2", "--quiet",
                         "--json", str(out), *plot, timeout=300)
    assert done.returncode == 0, done.stderr
    results = {r["key"]: r for r in json.loads(out.read_text())["results"]}
    assert sorted(results) == sorted(["echo size=64", "echo size=1024", "echo conns=1", "echo conns=2",
                                      "bulk size=64", "bulk size=1024", "bulk conns=1", "bulk conns=2",
                                      "handshake conns=1", "handshake conns=2"])
    assert results["echo size=1024"]["params"]["size"] == 1024
    assert results["echo conns=2"]["params"]["connections"] == 2
    assert results["bulk size=1024"]["params"]["write_size"] == 1024
    assert results["bulk conns=2"]["params"]["sweep"] == {"axis": "connections", "value": 2}
    for key, result in results.items():
        assert sorted(result["summary"]) == ["tlsfast", "twisted"], key
        for row in result["summary"].values():
            if result["scenario"] in ("echo", "handshake"):
                assert 0 < row["latency_p50_us"] <= row["latency_p99_us"] <= row["latency_p99.9_us"], key
            else:
                assert "latency_p50_us" not in row, key
    if HAVE_MATPLOTLIB:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
