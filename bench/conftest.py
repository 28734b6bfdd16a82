"""
Benchmark configuration.

* Puts the repository root on sys.path so ``bench`` imports however pytest
  is invoked (the benchmarks themselves import only ``tlsfast``).
* Pins the TLS 1.3 suite and group for stdlib ``ssl`` through OPENSSL_CONF
  (bench/openssl.cnf): CPython's ssl has no API for TLS 1.3 suites, and the
  system libcrypto reads its configuration once, when it is first initialised
  (``hashlib`` already did that before this file runs).  So when benchmarks
  are going to be timed and OPENSSL_CONF is unset, the pytest process is
  re-executed once with it set.  Smoke runs (``--benchmark-disable``) and
  TLSFAST_BENCH_NO_REEXEC=1 skip that; the stdlib benchmark records the suite
  it negotiated in ``extra_info`` and warns when it is not the pinned one.
* Timed runs save their pytest-benchmark JSON (``--benchmark-autosave``, in
  ``.benchmarks/``) unless told where (``--benchmark-save``,
  ``--benchmark-json``), so that ``--benchmark-compare`` can diff a change
  against an earlier run (docs/benchmarks.md, "Compare a change against
  main"); the saved machine info names both OpenSSL builds, OPENSSL_CONF and
  whether the engine was accelerated.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

OPENSSL_CNF = os.path.join(HERE, "openssl.cnf")


def pytest_configure(config):
    _autosave(config)
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


def _autosave(config) -> None:
    """Save timed runs' JSON, as --benchmark-autosave does, unless the command line chose."""
    if not hasattr(config.option, "benchmark_autosave"):  # pytest-benchmark not installed / disabled
        return
    option = config.option
    if option.benchmark_disable or option.benchmark_save or option.benchmark_json or option.benchmark_autosave:
        return
    option.benchmark_autosave = True


def pytest_benchmark_update_machine_info(config, machine_info):
    """What else makes two saved runs comparable: the TLS libraries and their pinning."""
    import ssl

    from cryptography.hazmat.backends.openssl import backend

    import tlsfast

    machine_info["tlsfast"] = {
        "accelerated": tlsfast.ACCELERATED, "openssl_bundled": backend.openssl_version_text(),
        "openssl_stdlib": ssl.OPENSSL_VERSION, "OPENSSL_CONF": os.environ.get("OPENSSL_CONF"),
    }
