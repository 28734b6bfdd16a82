"""
``tlsfast bench proxy`` still runs: a quick pass of the tlsfast proxy alone,
with haproxy, stunnel and hitch hidden from PATH so that the run has to say
they are missing and leave them out.  No timing is asserted, only that every
scenario measured something over the pinned TLS 1.3 suite.  ``make
bench-proxy``'s script (bench/proxy_compare.py) is the same command.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _path_without_proxies(directory) -> str:
    """A PATH with this Python and taskset only."""
    os.symlink(shutil.which("taskset"), directory / "taskset")
    return f"{directory}{os.pathsep}{os.path.dirname(sys.executable)}"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("taskset") is None, reason="the proxy comparison pins with taskset")
def test_bench_proxy_quick(tmp_path):
    out = tmp_path / "proxy.json"
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    env = dict(os.environ, PATH=_path_without_proxies(bin_directory))
    completed = subprocess.run(
        [sys.executable, "-m", "tlsfast", "bench", "proxy", "--quick", "--rounds", "1",
         "--contenders", "tlsfast,haproxy,stunnel,hitch", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "not installed, left out: haproxy, stunnel, hitch" in completed.stderr
    assert "Not installed, left out: haproxy, stunnel, hitch." in completed.stdout
    report = json.loads(out.read_text())
    assert report["meta"]["contenders"] == ["tlsfast"]
    assert report["meta"]["missing"] == ["haproxy", "stunnel", "hitch"]
    for scenario in ("bulk1", "bulk16", "handshake", "rr1", "rr16", "idle"):
        [run] = report["runs"][scenario]["tlsfast"]
        assert not run.get("client_errors"), run["client_errors"]
        if scenario != "idle":
            assert run["rate"] > 0 and run["tls_version"] == "TLSv1.3"
            assert run["cipher"] == "TLS_AES_128_GCM_SHA256"
    assert "| tlsfast |" in completed.stdout


def test_bench_proxy_arguments():
    done = subprocess.run([sys.executable, "-m", "tlsfast", "bench", "proxy", "--contenders", "tlsfast,nginx"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("tlsfast bench proxy: error: argument --contenders: unknown contender 'nginx' "
                                   "(choose from tlsfast, stock, haproxy, stunnel, hitch)")
    # make bench-proxy's script is the same command
    done = subprocess.run([sys.executable, "bench/proxy_compare.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: tlsfast bench proxy")
