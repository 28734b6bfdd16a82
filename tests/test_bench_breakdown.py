"""
``tlsfast bench breakdown``: the phase profiler's attribution (on a fake
clock), that every rule names a function that exists, and one short real run
whose phases add up.  Never how fast anything is.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from tlsfast.bench import breakdown, phases


class _WorkClock:
    """A clock that advances only when _inner works (10 units a call)."""

    now = 0.0

    def __call__(self) -> float:
        return self.now


CLOCK = _WorkClock()


def _inner():
    CLOCK.now += 10
    return len("x")


def _handshake():
    return _inner() + _inner()


def _callback():
    return _inner()


def _outer():
    _handshake()
    _callback()
    return _inner()


@pytest.fixture
def rules(monkeypatch):
    monkeypatch.setattr(phases, "RULES", {
        ("tests/test_bench_breakdown.py", "_handshake"): "handshake+records",
        ("tests/test_bench_breakdown.py", "_callback"): "callbacks",
    })


class TestPhaseProfiler:
    def test_innermostNamedFunctionDecides(self, rules):
        """_inner inherits the phase of whoever called it; the rest is other."""
        profiler = phases.PhaseProfiler(CLOCK)
        profiler.start()
        _outer()
        profiler.stop()
        # handshake: itself, 2 x _inner, 2 x len; callbacks: itself, _inner, len;
        # other: _outer, its _inner and len, then stop() and its sys.setprofile
        assert profiler.calls["handshake+records"] == 5
        assert profiler.calls["callbacks"] == 3
        assert profiler.calls["reactor/other"] == 5
        assert profiler.functions[("callbacks", "tests/test_bench_breakdown.py:_inner")] == 1
        assert profiler.functions[("handshake+records", "tests/test_bench_breakdown.py:_inner")] == 2

    def test_phasesAddUpToTheClock(self, rules):
        """The work done is charged to the phase it was done in, all of it."""
        profiler = phases.PhaseProfiler(CLOCK)
        started = CLOCK.now
        profiler.start()
        _outer()
        profiler.stop()
        assert profiler.seconds == {"accept/connect": 0, "setup": 0, "handshake+records": 20,
                                    "callbacks": 10, "close": 0, "reactor/other": 10}
        assert sum(profiler.seconds.values()) == CLOCK.now - started

    def test_returnsAboveTheStartAreOther(self, rules):
        """Frames entered before start() (the reactor's) count as other."""
        profiler = phases.PhaseProfiler(CLOCK)

        def started():
            profiler.start()

        started()  # returns out of the frame that started the profiler
        _callback()
        profiler.stop()
        assert profiler.calls["callbacks"] == 3
        assert profiler.seconds["callbacks"] == 10


def _moduleFor(fileTail: str):
    """The loaded module whose file ends with fileTail (or a C module's name)."""
    for module in list(sys.modules.values()):
        path = (getattr(module, "__file__", None) or "").replace("\\", "/")
        if path.endswith(fileTail):
            return module
    return sys.modules.get(fileTail)


def test_rulesNameFunctionsThatExist():
    """A renamed function would silently fall into reactor/other: each rule's
    function must exist where the rule says (nested ones: their enclosing one)."""
    import tlsfast.twisted

    for name in ("twisted.internet.tcp", "twisted.internet.base", "twisted.internet.posixbase",
                 "twisted.internet.abstract", "twisted.internet._sslverify", "twisted.protocols.tls",
                 "OpenSSL.SSL", "tlsfast._foreign.twistedtls", "tlsfast._foreign.pyopenssl", "tlsfast.options._server", "tlsfast.options._monitor",
                 "tlsfast.options._client", "tlsfast.proxy._relay", "tlsfast.bench.server", "tlsfast.bench.handshake_client"):
        importlib.import_module(name)
    assert tlsfast.twisted  # the glue's module is imported by its package
    missing = []
    for (fileTail, qualname), phase in phases.RULES.items():
        assert phase in phases.PHASES
        module = _moduleFor(fileTail)
        target = module
        for part in qualname.split(".<locals>.")[0].split("."):
            target = getattr(target, part, None)
        if module is None or target is None:
            missing.append(f"{fileTail}:{qualname}")
    assert not missing, missing


def test_runAddsUp(tmp_path):
    """All three subjects in a small run: figures for each, calls counted,
    phases summing to the totals, attributed time within the CPU used."""
    output = tmp_path / "breakdown.json"
    result = subprocess.run([sys.executable, "-m", "tlsfast", "bench", "breakdown", "--seconds", "0.4",
                             "--json", str(output)], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| **total** |" in result.stdout and "RULES" in result.stdout
    document = json.loads(output.read_text())
    assert [s["subject"] for s in document["subjects"]] == list(breakdown.SUBJECTS)
    for subject in document["subjects"]:
        rows = subject["phases"]
        assert [p["phase"] for p in rows] == list(phases.PHASES)
        assert subject["plain"]["connections"] > 0 and subject["profiled"]["connections"] > 0
        assert sum(p["calls"] for p in rows) > 100  # per connection: really profiled
        assert sum(p["profiled_us"] for p in rows) == pytest.approx(subject["profiled_total_us"])
        assert sum(p["estimated_us"] for p in rows) == pytest.approx(subject["plain_us_per_connection"])
        assert subject["profiled_total_us"] <= subject["profiled_cpu_us"] * 1.01
        named = sum(p["profiled_us"] for p in rows if p["phase"] != phases.OTHER)
        assert named > 0.3 * subject["profiled_total_us"]  # the rules cover most of the time


def test_unknownSubject():
    result = subprocess.run([sys.executable, "-m", "tlsfast", "bench", "breakdown", "nosuch"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown subject nosuch" in result.stderr
