"""
The command line on an install with the core dependencies only: ``info`` and
``--version`` work; ``proxy`` and ``bench`` say in one line which extra to
install (exit status 2) instead of failing on an import.

Each run is a subprocess in which the extras' modules are hidden by ``None``
entries in ``sys.modules``: the import system then treats them as not
installed.  tests/test_packaging.py checks the same in a real core-only venv.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import tlsfast

#: the modules the optional extras (proxy, bench) bring
EXTRA_MODULES = ("rich", "prometheus_client", "proxyprotocol", "matplotlib", "uvloop", "pytest_benchmark")

RUN = """\
import sys
for name in {hidden!r}:
    sys.modules[name] = None
from tlsfast.cli import main
sys.exit(main({argv!r}))
"""


def tlsfast_without(hidden: tuple[str, ...], *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``tlsfast argv`` in a subprocess where the ``hidden`` modules cannot be imported."""
    code = RUN.format(hidden=hidden, argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)


def test_info_needs_only_the_core() -> None:
    result = tlsfast_without(EXTRA_MODULES, "info")
    assert result.returncode == 0, result.stderr
    assert f"tlsfast        {tlsfast.__version__}" in result.stdout


def test_version_needs_only_the_core() -> None:
    result = tlsfast_without(EXTRA_MODULES, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"tlsfast {tlsfast.__version__}\n", "")


# Arguments that would reach the hidden module at once if the check were missing.
PROXY = ("proxy", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--mode", "originate")
BENCH_ENGINE = ("bench", "engine", "--engine-sizes", "64", "--engine-rounds", "1", "--engine-seconds", "0.1")


@pytest.mark.parametrize(
    "hidden, argv, extra",
    [
        (("prometheus_client",), PROXY + ("--metrics", "127.0.0.1:0"), "proxy"),
        (("proxyprotocol",), PROXY + ("--accept-proxy",), "proxy"),
        (("rich",), BENCH_ENGINE, "bench"),
    ],
    ids=["proxy-without-prometheus_client", "proxy-without-proxyprotocol", "bench-without-rich"],
)
def test_missing_extra_is_one_line(hidden: tuple[str, ...], argv: tuple[str, ...], extra: str) -> None:
    result = tlsfast_without(hidden, *argv)
    expected = f"tlsfast {argv[0]} needs the {extra} extra: pip install 'tlsfast[{extra}]'\n"
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected)


@pytest.mark.parametrize("command", ["proxy", "bench"])
def test_help_needs_only_the_core(command: str) -> None:
    """The options are readable before the extra is installed."""
    result = tlsfast_without(EXTRA_MODULES, command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: tlsfast {command}")
