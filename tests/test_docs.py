"""The documentation builds without a single warning (``sphinx-build -W``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e '.[test]')")
pytest.importorskip("myst_parser", reason="myst-parser is not installed (pip install -e '.[test]')")

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def test_docs_build_warning_free(tmp_path):
    out = tmp_path / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-b", "html",
         "-d", str(tmp_path / "doctrees"), DOCS, str(out)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "warning" not in done.stderr.lower(), done.stderr
    for page in ("index", "twisted", "howto", "architecture", "compatibility", "benchmarks", "bench-cli",
                 "proxy", "testing", "api"):
        assert (out / f"{page}.html").is_file(), page
    api = (out / "api.html").read_text()
    for name in ("TLSEngine", "receive", "backend_info", "install", "TLSMemoryBIOProtocol"):
        assert name in api, name
    assert "terminates, originates or re-encrypts" in (out / "proxy.html").read_text()  # the guide, not a placeholder
    assert "tlsfast bench --quick" in (out / "bench-cli.html").read_text()
