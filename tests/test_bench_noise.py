"""
``tlsfast bench`` marks rows not to trust: a large spread over repetitions,
or plain TCP costing more than TLS.  Synthetic results, no processes.
"""

from __future__ import annotations

import math

from tlsfast.bench import noise, report
from tlsfast.bench.runner import Result, Sample


def _result(scenario: str = "bulk", **stacks: list[tuple[float, float]]) -> Result:
    """A result with, per stack, one sample per (rate, CPU µs per op) pair."""
    result = Result(scenario, scenario, scenario, "MiB", "server process")
    for stack, samples in stacks.items():
        for rep, (rate, cpu_us) in enumerate(samples):
            result.samples.append(Sample(stack, ops=rate, seconds=1.0, cpu_seconds=cpu_us * rate / 1e6, rep=rep))
    return result


STEADY = [(100.0, 50.0), (104.0, 51.0), (98.0, 49.0)]


def test_steady_rows_are_not_marked():
    result = _result(twisted=STEADY, tcp=[(300.0, 10.0), (310.0, 10.5), (290.0, 9.5)])
    assert noise.mark([result]) == []
    assert result.flags == {}
    assert "flags" not in report.rows(result)[0]


def test_cpu_spread_marks_the_row_and_hints():
    result = _result(twisted=STEADY, tlsfast=[(100.0, 30.0), (100.0, 50.0), (100.0, 40.0)])
    hints = noise.mark([result])
    assert list(result.flags) == ["tlsfast"]
    assert result.flags["tlsfast"] == ["noisy: CPU per op spread 50% of the median"]
    assert len(hints) == 1 and "--reps" in hints[0] and "--server-core" in hints[0]
    header, body = report.rows(result)
    assert header[-1] == "flags" and [row[-1] for row in body] == ["", "noisy"]


def test_rate_spread_has_its_own_limit():
    # 273-1,570 MiB/s, the run #16 quotes: far beyond the rate limit
    result = _result(twisted=[(273.0, 50.0), (900.0, 50.0), (1570.0, 50.0)])
    noise.mark([result])
    assert result.flags == {"twisted": ["noisy: rate spread 144% of the median"]}
    within = _result(twisted=[(80.0, 50.0), (100.0, 50.0), (120.0, 50.0)])  # 40%: normal for a rate
    assert noise.mark([within]) == [] and within.flags == {}


def test_one_repetition_has_no_spread():
    result = _result(twisted=[(100.0, 50.0)])
    assert noise.mark([result]) == []


def test_plain_tcp_slower_than_tls_is_implausible():
    close = _result(twisted=STEADY, tcp=[(95.0, 10.0), (96.0, 10.0), (94.0, 10.0)])  # within 10 %: noise
    assert noise.mark([close]) == [] and close.flags == {}
    result = _result(twisted=STEADY, tcp=[(85.0, 10.0), (86.0, 10.0), (84.0, 10.0)])
    hints = noise.mark([result])
    assert result.flags == {"tcp": ["implausible: plain TCP was slower than twisted"]}
    assert len(hints) == 1 and hints[0].startswith("implausible rows") and "--reps" in hints[0]
    costly = _result(twisted=STEADY, tcp=[(300.0, 60.0), (300.0, 60.0), (300.0, 60.0)])
    noise.mark([costly])
    assert costly.flags == {"tcp": ["implausible: plain TCP used more CPU per op than twisted"]}


def test_plain_tcp_is_the_ceiling_of_stock_twisted_tls_only():
    """
    Twisted's plain TCP beaten by TLS on another loop (uvloop's C loop) or by
    tlsfast's compiled record loop is no anomaly; by stock Twisted TLS, it is.
    """
    result = _result("echo", tcp=[(4800.0, 82.0)] * 3, uvloop=[(4700.0, 60.0)] * 3, asyncio=[(5400.0, 70.0)] * 3,
                     tlsfast=[(4700.0, 60.0)] * 3)
    assert noise.mark([result]) == [] and result.flags == {}
    result = _result("echo", tcp=[(4800.0, 82.0)] * 3, twisted=[(4700.0, 60.0)] * 3)
    noise.mark([result])
    assert result.flags == {"tcp": ["implausible: plain TCP used more CPU per op than twisted"]}


def test_a_target_is_no_reference_for_plain_tcp():
    result = _result("echo", tcp=STEADY, target=[(300.0, math.nan), (310.0, math.nan), (305.0, math.nan)])
    assert noise.mark([result]) == [] and result.flags == {}


def test_unpinned_run_says_so():
    result = _result(twisted=[(100.0, 30.0), (100.0, 50.0)])
    [hint] = noise.mark([result], pinned=False)
    assert "this run was not pinned" in hint


def test_flags_reach_the_json():
    result = _result(twisted=STEADY, tcp=[(80.0, 10.0), (81.0, 10.0), (79.0, 10.0)])
    noise.mark([result])
    assert result.to_json()["flags"] == {"tcp": ["implausible: plain TCP was slower than twisted"]}


def test_the_run_prints_the_marks_and_hints(capsys):
    from tlsfast.bench.cli import _show
    from tlsfast.bench.runner import Settings

    result = _result(twisted=STEADY, tcp=[(80.0, 10.0), (81.0, 10.0), (79.0, 10.0)])
    hints = noise.mark([result])
    _show([result], Settings(scenarios=["bulk"], stacks=["tcp", "twisted"]), ["bulk"], False, 1.0, {}, hints)
    out = capsys.readouterr().out
    assert "flagged tcp: implausible: plain TCP was slower than twisted" in out
    assert "hint: implausible rows" in " ".join(out.split())
    assert "implausible" in [line.split()[-1] for line in out.splitlines() if line.strip().startswith("tcp")]
