"""
Benchmark configuration.

* Puts the repository root on sys.path so ``tests.peers`` / ``tests.pki`` and
  ``bench.transfer`` import however pytest is invoked.
* Pins the TLS 1.3 suite and group for stdlib ``ssl`` through OPENSSL_CONF
  (bench/openssl.cnf): CPython's ssl has no API for TLS 1.3 suites, and the
  system libcrypto reads its configuration once, when it is first initialised
  (``hashlib`` already did that before this file runs).  So when benchmarks
  are going to be timed and OPENSSL_CONF is unset, the pytest process is
  re-executed once with it set.  Smoke runs (``--benchmark-disable``) and
  TLSFAST_BENCH_NO_REEXEC=1 skip that; the stdlib benchmark records the suite
  it negotiated in ``extra_info`` and warns when it is not the pinned one.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

OPENSSL_CNF = os.path.join(HERE, "openssl.cnf")


def pytest_configure(config):
    if (
        "OPENSSL_CONF" in os.environ
        or os.environ.get("TLSFAST_BENCH_NO_REEXEC")
        or config.getoption("benchmark_disable", False)
        or not getattr(sys, "orig_argv", None)
    ):
        return
    os.environ["OPENSSL_CONF"] = OPENSSL_CNF
    # pytest has redirected fds 1 and 2 to its capture files: give the
    # re-executed process the real ones.
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
