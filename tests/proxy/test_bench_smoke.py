"""
bench/proxy_compare.py still runs: a quick pass of the tlsfast proxy alone
(haproxy and stunnel are not needed here).  No timing is asserted, only that
every scenario measured something over the pinned TLS 1.3 suite.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_proxy_compare_quick(tmp_path):
    out = tmp_path / "proxy.json"
    completed = subprocess.run(
        [sys.executable, "bench/proxy_compare.py", "--quick", "--rounds", "1", "--no-install",
         "--contenders", "tlsfast", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(out.read_text())
    for scenario in ("bulk1", "bulk16", "handshake", "rr1", "rr16", "idle"):
        [run] = report["runs"][scenario]["tlsfast"]
        assert not run.get("client_errors"), run["client_errors"]
        if scenario != "idle":
            assert run["rate"] > 0 and run["tls_version"] == "TLSv1.3"
            assert run["cipher"] == "TLS_AES_128_GCM_SHA256"
    assert "| tlsfast |" in completed.stdout
