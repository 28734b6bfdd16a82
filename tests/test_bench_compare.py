"""
``tlsfast bench compare`` (the t-test and the verdicts, on synthetic
samples), ``tlsfast bench plot`` (a saved run drawn again) and the saved
JSON read back.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.test_bench_cli import HAVE_MATPLOTLIB, one_line_error, tlsfast_bench
from tlsfast.bench import compare, report
from tlsfast.bench.runner import Result, Sample, Settings


def test_t_score_and_significance():
    # means 2 and 5, both variances 1: t = 3 / sqrt(1 * (1/3 + 1/3))
    assert compare.t_score([1, 2, 3], [4, 5, 6]) == pytest.approx(3 / math.sqrt(2 / 3))
    assert compare.significant([1, 2, 3], [4, 5, 6])  # 3.67 >= t(0.975, 4) = 2.776
    assert not compare.significant([1, 2, 3], [1.5, 2.5, 3.5])  # t = 0.61
    assert compare.t_score([4, 5, 6], [1, 2, 3]) == pytest.approx(-3 / math.sqrt(2 / 3))
    # unequal sizes, pooled variance: a = [1, 3] (var 2), b = [2, 4, 6] (var 4): pooled (2 + 8) / 3
    assert compare.t_score([1, 3], [2, 4, 6]) == pytest.approx(2 / math.sqrt(10 / 3 * (1 / 2 + 1 / 3)))


def test_degenerate_samples():
    assert not compare.significant([1.0], [5.0, 6.0])  # one sample: no spread to judge by
    assert not compare.significant([2.0, 2.0], [2.0, 2.0])
    assert compare.significant([2.0, 2.0], [3.0, 3.0])  # no spread at all, different: t is infinite
    assert compare.t_critical_95(1) == 12.706 and compare.t_critical_95(30) == 2.042
    assert compare.t_critical_95(500) == 1.96
    with pytest.raises(ValueError):
        compare.t_critical_95(0)


def _result(key: str, scenario: str = "echo", **stacks: list[tuple[float, float]]) -> Result:
    """Per stack, one sample per (rate, CPU µs per op)."""
    result = Result(key, scenario, key, "message", "server process")
    for stack, samples in stacks.items():
        for rep, (rate, cpu_us) in enumerate(samples):
            result.samples.append(Sample(stack, ops=rate, seconds=1.0, cpu_seconds=cpu_us * rate / 1e6, rep=rep))
    return result


A = [_result("echo", twisted=[(100, 50), (101, 51), (99, 49)], tlsfast=[(200, 30), (210, 31), (190, 29)],
             asyncio=[(150, 40), (150, 40), (150, 40)]),
     _result("idle", "idle", twisted=[(1000, 40), (1000, 41), (1000, 39)]),
     _result("bulk", twisted=[(10, 1000), (10, 1000)])]
B = [_result("echo", twisted=[(100, 50), (60, 20), (140, 80)], tlsfast=[(300, 20), (310, 21), (290, 19)]),
     _result("idle", "idle", twisted=[(1000, 30), (1000, 31), (1000, 29)]),
     _result("handshake", twisted=[(10, 1000), (10, 1000)])]


def test_rows_and_verdicts():
    rows = compare.compare(A, B)
    # only what both runs measured: no asyncio (A only), no bulk (A only), no handshake (B only)
    assert [(row.key, row.stack) for row in rows] == [("echo", "twisted"), ("echo", "tlsfast"), ("idle", "twisted")]
    twisted, tlsfast, idle = rows
    assert twisted.verdicts() == ("not significant", "not significant")  # B's spread swallows it
    assert tlsfast.cpu.ratio == pytest.approx(20 / 30)
    assert tlsfast.rate is not None and tlsfast.rate.ratio == pytest.approx(1.5)
    assert tlsfast.verdicts() == ("faster", "faster")
    assert idle.verdicts() == ("smaller", "")
    slower = compare.compare(B, A)[1]
    assert slower.stack == "tlsfast" and slower.verdicts() == ("slower", "slower")


def test_differences():
    a = {"version": "1.3", "cipher": "X", "env": {"cpu": "EPYC", "cores": 2}}
    b = {"version": "1.3", "cipher": "Y", "env": {"cpu": "Xeon", "cores": 2}, "mtls": True}
    assert compare.differences(a, b) == ["cipher", "env.cpu", "mtls"]


def _save(path, results, **settings) -> None:
    settings_object = Settings(scenarios=["echo"], stacks=["twisted", "tlsfast"], **settings)
    report.write_json(str(path), report.document(results, settings_object, ["echo"], False, 1.0))


def test_json_round_trip(tmp_path):
    _save(tmp_path / "a.json", A)
    document, results = report.load(str(tmp_path / "a.json"))
    assert [r.to_json() for r in results] == [r.to_json() for r in A]
    assert document["environment"]["cpu_model"] and document["environment"]["kernel"]


def test_compare_command(tmp_path):
    _save(tmp_path / "a.json", A)
    _save(tmp_path / "b.json", B, cipher="TLS_AES_256_GCM_SHA384")
    done = tlsfast_bench("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert done.returncode == 0, done.stderr
    lines = {tuple(line.split()[:2]): line for line in done.stdout.splitlines() if line.strip()}
    assert "0.67×" in lines["echo", "tlsfast"] and "1.50×" in lines["echo", "tlsfast"]
    assert lines["echo", "tlsfast"].count("faster") == 2
    assert lines["echo", "twisted"].count("not significant") == 2
    assert "smaller" in lines["idle", "twisted"]
    assert "note: A and B differ in tls: cipher" in done.stdout


def test_compare_bad_input(tmp_path):
    _save(tmp_path / "a.json", A)
    (tmp_path / "text.json").write_text("not json")
    (tmp_path / "other.json").write_text(json.dumps({"format": 99, "results": []}))
    a = str(tmp_path / "a.json")
    for other, text in ((str(tmp_path / "missing.json"), "cannot read"), (str(tmp_path / "text.json"), "is not JSON"),
                        (str(tmp_path / "other.json"), "is not a tlsfast bench --json file")):
        done = tlsfast_bench("compare", a, other)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("tlsfast bench compare: error: ") and text in line, line
    done = tlsfast_bench("compare", a)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed (the test extra has it)")
def test_plot_command(tmp_path):
    _save(tmp_path / "a.json", A)
    done = tlsfast_bench("plot", str(tmp_path / "a.json"))
    assert done.returncode == 0, done.stderr
    data = (tmp_path / "a.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"Matplotlib" in data
    done = tlsfast_bench("plot", str(tmp_path / "a.json"), "-o", str(tmp_path / "other.png"))
    assert done.returncode == 0 and (tmp_path / "other.png").exists()


def test_plot_without_matplotlib(tmp_path):
    _save(tmp_path / "a.json", A)
    done = tlsfast_bench("plot", str(tmp_path / "a.json"), prelude="import sys; sys.modules['matplotlib'] = None")
    assert done.returncode == 3
    assert done.stderr.strip() == "tlsfast bench plot: error: tlsfast bench plot needs matplotlib " \
                                  "(pip install 'tlsfast[plot]')"


def test_bench_help_names_the_actions():
    done = tlsfast_bench("--help")
    assert done.returncode == 0 and "tlsfast bench compare A.json B.json" in done.stdout
    done = tlsfast_bench("compare", "--help")
    assert done.returncode == 0 and "Student's two-sample t-test" in done.stdout
    one_line_error(tlsfast_bench("nope"), 2, "unknown scenario 'nope'")
