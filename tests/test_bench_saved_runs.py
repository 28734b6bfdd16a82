"""
The engine benchmarks in bench/ save pytest-benchmark JSON on every timed
run, which ``pytest --benchmark-compare`` diffs (docs/benchmarks.md, "Compare
a change against main").  One tiny benchmark, timed for a few milliseconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("pytest_benchmark")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench(storage, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "bench/test_engine_bench.py", "-k", "bind_engine", "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", f"--benchmark-storage=file://{storage}", "--benchmark-max-time=0.005",
         "--benchmark-min-rounds=2", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


def _saved(storage) -> list:
    return sorted(p for p in storage.rglob("*.json"))


def test_timed_runs_are_saved_and_compared(tmp_path):
    done = _bench(tmp_path, "--benchmark-save=main")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [saved] = _saved(tmp_path)
    assert saved.name == "0001_main.json"
    document = json.loads(saved.read_text())
    assert [b["name"] for b in document["benchmarks"]] == ["test_bind_engine"]
    assert set(document["machine_info"]["tlsfast"]) == {"accelerated", "openssl_bundled", "openssl_stdlib",
                                                        "OPENSSL_CONF"}
    # without a --benchmark-save, a timed run is saved all the same
    done = _bench(tmp_path, "--benchmark-compare=0001")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "Comparing against benchmarks from: " in output and "0001_main.json" in output
    assert "test_bind_engine (0001_main)" in output and "test_bind_engine (NOW)" in output
    assert len(_saved(tmp_path)) == 2


def test_smoke_runs_are_not_saved(tmp_path):
    done = _bench(tmp_path, "--benchmark-disable")
    assert done.returncode == 0, done.stdout[-2000:]
    assert _saved(tmp_path) == []
