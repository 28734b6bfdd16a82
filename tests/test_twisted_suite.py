"""
Twisted's own TLS test modules, run by trial twice -- stock Twisted and with
``tlsfast.twisted.install()`` (tools/trial_with_tlsfast.py) -- in
subprocesses.  Every test that passes on stock must pass with tlsfast, and
the tlsfast run must really have driven connections through the engine.

Exclusions (none today) must be listed in docs/compatibility.md with their
reason and go in EXCLUDED below.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import tlsfast

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tools" / "trial_with_tlsfast.py"

MODULES = [
    "twisted.protocols.test.test_tls",
    "twisted.internet.test.test_tls",
    "twisted.test.test_ssl",
    "twisted.test.test_sslverify",
    "twisted.internet.test.test_newtls",
    # Whole modules: their TLS tests and everything around them.
    "twisted.internet.test.test_endpoints",
    "twisted.web.test.test_agent",
    "twisted.test.test_amp",
    # twisted.protocols.test.test_sni does not exist in Twisted 26.10; the SNI
    # endpoint tests live in test_endpoints.
]

# test id -> reason; each documented in docs/compatibility.md.
EXCLUDED: dict[str, str] = {}

# "twisted.x.Tests.test_y ... [OK]" (bwverbose); several results can follow
# one name ("[ERROR][ERROR]"), and a warning may be printed right after.
RESULT_LINE = re.compile(r"^(?P<test>[\w.]+) \.\.\. (?P<results>(?:\[[A-Z !?]+\])+)")
ENGINE_LINE = re.compile(r"^tlsfast-trial: engine=(\d+) stock-path=(\d+)$", re.M)


def _parse(output: str) -> dict[str, set[str]]:
    results: dict[str, set[str]] = {}
    for line in output.splitlines():
        match = RESULT_LINE.match(line)
        if match:
            found = set(re.findall(r"\[([A-Z !?]+)\]", match["results"]))
            results.setdefault(match["test"], set()).update(found)
    return results


def _passed(results: dict[str, set[str]]) -> set[str]:
    return {test for test, found in results.items() if found == {"OK"}}


def _run(module: str, accelerated: bool) -> tuple[int, str]:
    command = [sys.executable]
    command += [str(RUNNER)] if accelerated else ["-m", "twisted.trial"]
    command += ["--reporter=bwverbose", module]
    env = dict(os.environ)
    env.pop("TLSFAST_DISABLE", None)
    # trial writes _trial_temp into the working directory: one per run.
    with tempfile.TemporaryDirectory(prefix="tlsfast-trial-") as cwd:
        completed = subprocess.run(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=600,
        )
    return completed.returncode, completed.stdout


@pytest.fixture(scope="module")
def runs():
    """Both runs of every module, at most two subprocesses per core."""
    jobs = [(module, accelerated) for module in MODULES for accelerated in (False, True)]
    # The longest module (sslverify) first, so the pool drains evenly.
    jobs.sort(key=lambda job: job[0] != "twisted.test.test_sslverify")
    workers = max(2, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {job: pool.submit(_run, *job) for job in jobs}
        results = {job: future.result() for job, future in futures.items()}
    # TLSFAST_TRIAL_LOGS=dir keeps every trial output (for CI artifacts).
    logs = os.environ.get("TLSFAST_TRIAL_LOGS")
    if logs:
        Path(logs).mkdir(parents=True, exist_ok=True)
        for (module, accelerated), (status, output) in results.items():
            name = f"{module}.{'tlsfast' if accelerated else 'stock'}.log"
            (Path(logs) / name).write_text(f"exit status {status}\n{output}")
    return results


def test_parser():
    output = (
        "twisted.a.T.test_ok ... [OK]\n"
        "twisted.a.T.test_err ... [ERROR][ERROR]\n"
        "twisted.a.T.test_warn ... [OK]/x.py:1: Warning: w\n"
        "twisted.a.T.test_skip ... [SKIPPED]\n"
        "twisted.a.T.test_fail ... [FAIL]\n"
    )
    results = _parse(output)
    assert _passed(results) == {"twisted.a.T.test_ok", "twisted.a.T.test_warn"}
    assert results["twisted.a.T.test_err"] == {"ERROR"}


@pytest.mark.slow
@pytest.mark.skipif(not tlsfast.ACCELERATED, reason="tlsfast engine unavailable")
@pytest.mark.parametrize("module", MODULES)
def test_twisted_module_passes_with_tlsfast(runs, module):
    stockStatus, stockOutput = runs[(module, False)]
    fastStatus, fastOutput = runs[(module, True)]
    stock = _parse(stockOutput)
    fast = _parse(fastOutput)
    assert _passed(stock), f"stock run of {module} passed nothing:\n{stockOutput[-3000:]}"

    counts = ENGINE_LINE.search(fastOutput)
    assert counts, f"tlsfast was not installed for {module}:\n{fastOutput[-3000:]}"
    assert int(counts[1]) > 0, f"no connection of {module} ran on the engine"

    missing = sorted(set(stock) - set(fast))
    assert not missing, f"tests not run with tlsfast: {missing[:20]}"
    regressions = sorted(_passed(stock) - _passed(fast) - set(EXCLUDED))
    details = "\n".join(f"{test}: {sorted(fast.get(test, ()))}" for test in regressions)
    assert not regressions, (
        f"{len(regressions)} tests pass on stock but not with tlsfast:\n{details}\n"
        f"{fastOutput[-6000:]}"
    )
    if stockStatus == 0:
        assert fastStatus == 0, fastOutput[-6000:]
