"""
``tlsfast bench``: one run on the smallest settings (every scenario, every
stack that runs here), its JSON and plot; the error cases and Ctrl-C.

Only the shape and the sanity of what was measured are checked, never how
fast anything was.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tlsfast.bench.runner import BASELINE, Result, Sample

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
LOOPBACK = ["tcp", "twisted", "tlsfast", "asyncio"]
ENGINE = ["tlsfast", "twisted", "asyncio", "c"]
SMALLEST = ["--reps", "1", "--seconds", "0.3", "--megabytes", "1", "--engine-sizes", "64,16384",
            "--engine-rounds", "1", "--engine-seconds", "5"]


def tlsfast_bench(*args, timeout=120, prelude=None, **kwargs) -> subprocess.CompletedProcess:
    if prelude is None:
        command = [sys.executable, "-m", "tlsfast", "bench", *args]
    else:  # run the CLI after some setup code, in a fresh interpreter
        command = [sys.executable, "-c",
                   f"{prelude}\nimport sys\nfrom tlsfast.cli import main\nsys.exit(main({['bench', *args]!r}))"]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def one_line_error(done: subprocess.CompletedProcess, status: int, text: str) -> None:
    assert done.returncode == status, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tlsfast bench: error: "), lines
    assert text in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


# ---------------------------------------------------------------------------
# a whole run on the smallest settings

@pytest.fixture(scope="module")
def smallest_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bench")
    paths = {name: str(directory / name) for name in ("out.json", "out.png", "out.md", "out.csv")}
    plot = ["--plot", paths["out.png"]] if HAVE_MATPLOTLIB else []
    done = tlsfast_bench("bulk", "echo", "handshake", "engine", "--stacks", ",".join(LOOPBACK + ["c"]),
                         *SMALLEST, "--json", paths["out.json"], *plot, "--markdown", paths["out.md"],
                         "--csv", paths["out.csv"], "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    with open(paths["out.json"]) as f:
        document = json.load(f)
    return done, document, paths


def _results(document) -> dict:
    return {result["key"]: result for result in document["results"]}


def test_json_has_every_scenario_and_stack(smallest_run):
    _, document, _ = smallest_run
    results = _results(document)
    expected = {"bulk": LOOPBACK, "echo": LOOPBACK, "handshake": LOOPBACK,
                "handshake-resumed": ["twisted", "tlsfast", "asyncio"],
                "engine-64": ENGINE, "engine-16384": ENGINE}
    assert sorted(results) == sorted(expected)
    assert document["interrupted"] is False
    assert document["settings"]["cipher"] == "TLS_AES_128_GCM_SHA256"
    assert document["settings"]["group"] == "X25519"
    for key, stacks in expected.items():
        result = results[key]
        assert sorted(result["summary"]) == sorted(stacks), key
        assert sorted({s["stack"] for s in result["samples"]}) == sorted(stacks), key
        for sample in result["samples"]:
            assert sample["ops"] > 0 and sample["seconds"] > 0 and sample["cpu_seconds"] >= 0, (key, sample)
        for stack, row in result["summary"].items():
            assert row["n"] == len([s for s in result["samples"] if s["stack"] == stack])
            assert row["rate_min"] <= row["rate_median"] <= row["rate_max"]
            assert row["cpu_us_per_op_min"] <= row["cpu_us_per_op_median"] <= row["cpu_us_per_op_max"]
        assert result["summary"][BASELINE]["rate_vs_twisted"] == pytest.approx(1.0)


def test_csv_has_a_line_per_scenario_and_stack(smallest_run):
    import csv

    _, document, paths = smallest_run
    with open(paths["out.csv"], newline="") as f:
        lines = list(csv.DictReader(f))
    expected = [(r["key"], stack) for r in document["results"] for stack in r["summary"]]
    assert [(line["key"], line["stack"]) for line in lines] == expected
    for line in lines:
        row = _results(document)[line["key"]]["summary"][line["stack"]]
        assert float(line["cpu_us_per_op_median"]) == pytest.approx(row["cpu_us_per_op_median"])
        assert float(line["rate_median"]) == pytest.approx(row["rate_median"])
        assert (line["tls_version"], line["cipher"], line["group"]) == ("1.3", "TLS_AES_128_GCM_SHA256", "X25519")


def test_json_records_the_environment(smallest_run):
    import platform
    import ssl

    _, document, _ = smallest_run
    env = document["environment"]
    assert env["kernel"] == platform.release() and env["python"] == platform.python_version()
    assert env["cpu_model"] and env["cpu_model"] != "?"
    assert env["openssl_stdlib"] == ssl.OPENSSL_VERSION and env["openssl_bundled"].startswith("OpenSSL")
    assert env["server_core"] == document["settings"]["server_core"]
    assert env["client_core"] == document["settings"]["client_core"]
    assert env["affinity"]
    for package in ("tlsfast", "twisted", "pyopenssl", "cryptography"):
        assert env["packages"][package], package
    assert document["tls"] == {"version": "1.3", "cipher": "TLS_AES_128_GCM_SHA256", "group": "X25519",
                               "key_type": "ecdsa-p256", "mtls": False}


def test_bulk_moves_what_was_asked(smallest_run):
    _, document, _ = smallest_run
    for sample in _results(document)["bulk"]["samples"]:
        assert sample["ops"] == 1  # MiB per connection x connections
    for key in ("engine-64", "engine-16384"):
        for sample in _results(document)[key]["samples"]:
            assert sample["ops"] > 0
        assert _results(document)[key]["params"]["write_size"] == int(key.split("-")[1])


def test_negotiated_suite_and_group_are_reported(smallest_run):
    _, document, _ = smallest_run
    for key, result in _results(document).items():
        tls_stacks = [s for s in result["summary"] if s != "tcp"]
        assert sorted(result["negotiated"]) == sorted(tls_stacks), key
        for stack, negotiated in result["negotiated"].items():
            assert negotiated["cipher"] == "TLS_AES_128_GCM_SHA256", (key, stack)
            assert negotiated["version"] == "TLSv1.3", (key, stack)
            if stack in ("twisted", "tlsfast", "c"):  # cryptography's OpenSSL can tell the group
                assert negotiated["group"].split()[0].lower() == "x25519", (key, stack, negotiated)


def test_resumed_handshakes_are_resumed(smallest_run):
    _, document, _ = smallest_run
    results = _results(document)
    for sample in results["handshake-resumed"]["samples"]:
        # the first handshake of each connection slot is a full one
        assert sample["resumed"] >= sample["ops"] - 1 > 0, sample
    for sample in results["handshake"]["samples"]:
        assert sample["resumed"] in (0, None), sample


def test_tables_are_printed(smallest_run):
    done, document, paths = smallest_run
    for result in document["results"]:
        assert result["title"] in done.stdout
        for stack in result["summary"]:
            assert re.search(rf"^\s+{stack}\s+[0-9]", done.stdout, re.M), stack  # a table row
    assert "interrupted" not in done.stdout
    with open(paths["out.md"]) as f:
        markdown = f.read()
    assert markdown.count("| stack |") == len(document["results"])
    for label in ("stock Twisted TLS", "Twisted + tlsfast", "asyncio + stdlib ssl", "plain TCP (Twisted, no TLS)",
                  "C reference loop", "pyOpenSSL loop (stock Twisted)", "tlsfast engine",
                  "stdlib SSLObject (asyncio)"):
        assert f"| {label} |" in markdown, label


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed (the test extra has it)")
def test_plot_is_a_png_written_by_matplotlib(smallest_run):
    _, _, paths = smallest_run
    with open(paths["out.png"], "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert b"tEXtSoftware\x00Matplotlib version" in data
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 500 and height > 300


# ---------------------------------------------------------------------------
# summaries (no processes)

def test_summary_medians_spread_and_ratios():
    result = Result("echo", "echo", "t", "message", "server process")
    for stack, rates in (("twisted", [100, 300, 200]), ("tlsfast", [400, 500, 600])):
        for rep, rate in enumerate(rates):
            result.samples.append(Sample(stack, ops=rate, seconds=1.0, cpu_seconds=1.0, rep=rep))
    summary = result.summary()
    assert summary["twisted"]["rate_median"] == 200
    assert (summary["twisted"]["rate_min"], summary["twisted"]["rate_max"]) == (100, 300)
    assert summary["tlsfast"]["rate_vs_twisted"] == pytest.approx(2.5)
    assert summary["tlsfast"]["cpu_vs_twisted"] == pytest.approx((1e6 / 500) / (1e6 / 200))


# ---------------------------------------------------------------------------
# bad input: one line on stderr, documented exit status

def test_unknown_scenario():
    one_line_error(tlsfast_bench("bulk", "nope"), 2, "unknown scenario 'nope'")


def test_unknown_stack():
    one_line_error(tlsfast_bench("echo", "--stacks", "twisted,quic"), 2, "unknown stack 'quic'")


def test_bad_cipher():
    one_line_error(tlsfast_bench("echo", "--cipher", "RC4-MD5"), 2, "unknown TLS 1.3 cipher suite")


def test_unknown_group():
    one_line_error(tlsfast_bench("echo", "--group", "NOPE"), 2, "does not know the group 'NOPE'")


def test_plot_without_matplotlib(tmp_path):
    done = tlsfast_bench("echo", "--plot", str(tmp_path / "x.png"),
                         prelude="import sys; sys.modules['matplotlib'] = None")
    one_line_error(done, 3, "--plot needs matplotlib")
    assert not (tmp_path / "x.png").exists()


def test_bad_number():
    one_line_error(tlsfast_bench("echo", "--reps", "many"), 2, "--reps")


def test_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(tlsfast_bench("echo", "--stacks", "twisted", "--port", str(port)), 3,
                       f"port {port} on 127.0.0.1 is in use")


def test_stack_not_installed():
    # uvloop may or may not be installed here: hide it either way
    done = tlsfast_bench("echo", "--stacks", "twisted,uvloop", prelude="import sys; sys.modules['uvloop'] = None")
    one_line_error(done, 3, "stack 'uvloop' is not available: uvloop is not installed")


def test_bench_package_is_the_same_command():
    done = subprocess.run([sys.executable, "-m", "tlsfast.bench", "nope"], capture_output=True,
                          text=True, timeout=60)
    one_line_error(done, 2, "unknown scenario 'nope'")


def test_info_still_works():
    done = subprocess.run([sys.executable, "-m", "tlsfast", "info"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip()


# ---------------------------------------------------------------------------
# Ctrl-C

def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        if port < 65535:
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no two free ports in a row")


def _bench_processes(port: int) -> list[int]:
    """Our children: their command lines name tlsfast.bench and one of our ports."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(b"tlsfast.bench." in a for a in argv) and (
                str(port).encode() in argv or str(port + 1).encode() in argv):
            found.append(int(pid))
    return found


def test_ctrl_c_stops_children_and_prints_what_was_measured(tmp_path):
    port = _free_port_pair()
    out = tmp_path / "partial.json"
    bench = subprocess.Popen(
        [sys.executable, "-m", "tlsfast", "bench", "echo", "--stacks", "twisted,tlsfast", "--reps", "100",
         "--seconds", "0.3", "--port", str(port), "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # without a terminal, progress is one line per sample on stderr
        samples = 0
        deadline = time.monotonic() + 60
        while samples < 2 and time.monotonic() < deadline:
            line = bench.stderr.readline()
            if not line:
                break
            samples += line.startswith("echo ")
        assert samples == 2, "no samples before the deadline"
        assert _bench_processes(port), "the servers should be running"
        bench.send_signal(signal.SIGINT)
        stdout, stderr = bench.communicate(timeout=30)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    assert "interrupted" in stdout
    assert "echo: 64 B messages" in stdout
    document = json.loads(out.read_text())
    assert document["interrupted"] is True
    assert len(document["results"][0]["samples"]) >= 2
    time.sleep(0.2)
    assert _bench_processes(port) == []


def test_bench_modules_do_not_import_tlsfast_cli():
    """tlsfast.cli delegates to tlsfast.bench.cli; nothing under tlsfast/bench
    imports tlsfast.cli back (the cycle of issue #15)."""
    import ast
    import pathlib

    import tlsfast.bench

    offenders = []
    for path in pathlib.Path(tlsfast.bench.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {name}" for name in names if name == "tlsfast.cli"]
    assert offenders == []
