"""
Interleaved side-by-side in-memory transfer benchmark -> markdown tables.

    python -m tlsfast.bench.engine_report               # ~60-90 s, prints the tables
    python -m tlsfast.bench.engine_report --cpu 0       # pinned to core 0
    python -m tlsfast.bench.engine_report --overhead    # + where the time goes at 64 B
    python -m tlsfast.bench.engine_report --json out.json  # tables from pytest-benchmark's
                                                           #   --benchmark-json output instead

(``make bench-report`` and ``bench/report.py`` run this.)  Machines here are
noisy (rates swing 2-3x within minutes, and others run tests on the same two
cores), so instead of timing one contender for a second and then the next,
this runs many short rounds; in each round every contender moves the same
amount of data once per write size, in an order that rotates from round to
round.  Reported: the median over rounds of MB/s (10**6 bytes per second) by
thread CPU time (CLOCK_THREAD_CPUTIME_ID: time this thread actually ran, so
preemption by other processes does not count) and by wall clock, and the
median over rounds of the *paired* ratio (each contender vs the C reference /
the pyOpenSSL loop / stock Twisted's glue in the same round).

Every few rounds (--rebuild-every) all connection pairs are made anew with
random-sized allocations in between: at 16 KiB the engine/C ratio of one fixed
set of connections depends on where OpenSSL's and the results' buffers happen
to land (0.66 to 1.4 measured), so a single layout is not a measurement.  The
contenders and the rounds are :mod:`tlsfast.bench.engine`'s, the same loop
``tlsfast bench engine`` and the pytest-benchmark suite in ``bench/`` run.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Sequence
from typing import Any

from tlsfast.bench import engine
from tlsfast.bench.engine import CONTENDERS, GLUE_CONTENDERS, LABELS, WRITE_SIZES
from tlsfast.bench.runner import size_label
from tlsfast.bench.tlsconfig import TLSParams, write_openssl_conf

# Fractions of the C reference measured earlier (issue texts) and the targets.
EARLIER = {
    "twisted": {64: 0.10, 1024: 0.12, 16384: 0.35, 65536: 0.50},
    "asyncio": {64: 0.23, 1024: 0.27, 16384: 0.42, 65536: 0.47},
    "tlsfast-glue": {64: 0.16, 1024: 0.25, 16384: 0.55},  # issue #14
    "twisted-glue": {64: 0.06, 1024: 0.09, 16384: 0.27},
}
EARLIER_REFERENCE_MBPS = {64: 78, 1024: 880, 16384: 3100, 65536: 2800}
TARGET = 0.85  # engine / C
GLUE_TARGETS = {64: 0.5, 1024: 0.6, 16384: 0.8, 65536: 0.8}  # tlsfast glue / C (issue #14)

#: The ratio columns of each table: (contender, base).
ENGINE_RATIOS = (("tlsfast", "c"), ("twisted", "c"), ("asyncio", "c"),
                 ("tlsfast", "twisted"), ("asyncio", "twisted"))
GLUE_RATIOS = (("tlsfast-glue", "c"), ("twisted-glue", "c"), ("tlsfast-glue", "twisted-glue"),
               ("tlsfast", "tlsfast-glue"))
_SHORT = {"tlsfast": "engine", "twisted": "pyOpenSSL", "asyncio": "stdlib", "c": "C",
          "tlsfast-glue": "tlsfast glue", "twisted-glue": "stock glue"}

Summary = dict[tuple[str, int], dict[str, Any]]


def _reexec_with_openssl_conf() -> None:
    """stdlib ssl can only be pinned through OPENSSL_CONF, read at startup: write
    one for the default parameters and start this process again with it (the
    new process removes the file at exit)."""
    if "OPENSSL_CONF" in os.environ:
        owned = os.environ.pop("TLSFAST_BENCH_OWN_CONF", None)
        if owned:
            atexit.register(shutil.rmtree, owned, True)
        return
    directory = tempfile.mkdtemp(prefix="tlsfast-bench-conf-")
    os.environ["OPENSSL_CONF"] = write_openssl_conf(directory, TLSParams())
    os.environ["TLSFAST_BENCH_OWN_CONF"] = directory
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


# ---------------------------------------------------------------------------
# interleaved measurement

def measure(sizes: list[int], contenders: list[str], rounds: int, seconds: float,
            rebuild_every: int = 5, seed: int | None = None):
    """:func:`tlsfast.bench.engine.measure` on :func:`~tlsfast.bench.engine.default_pki`,
    with garbage collection between rounds and a byte-for-byte check before
    and after.  Returns (samples, totals, negotiated, rounds, seconds); a
    sample is (cpu_s, wall_s, minor faults)."""
    samples: dict[tuple[str, int], list[tuple[float, float, int]]] = {
        (name, size): [] for size in sizes for name in contenders}
    info: dict[tuple[str, int], dict] = {}
    done: dict[str, Any] = {}
    totals: dict[int, int] = {}

    def collect(record: dict) -> None:
        kind = record.pop("type")
        key = (record.pop("contender", None), record.pop("write_size", None))
        if kind == "negotiated":
            info[key] = record
        elif kind == "sample":
            samples[key].append((record["cpu_seconds"], record["wall_seconds"], record["minor_faults"]))
            totals[key[1]] = record["bytes"]
        else:
            done.update(record)

    engine.measure(engine.default_pki(), sizes, contenders, rounds, seconds, rebuild_every, emit=collect,
                   seed=seed, collect_each_round=True, verify_at_end=True)
    return samples, totals, info, done["rounds"], done["seconds"]


def _paired(values: Sequence[float], bases: Sequence[float]) -> float:
    """Median of the per-round ratios base/value (values are times, so this is
    the contender's rate over the base's)."""
    return statistics.median(b / v for v, b in zip(values, bases))


def summarise(samples, totals: dict[int, int], sizes: list[int], contenders: list[str]) -> Summary:
    """{(name, size): {...}}: median rates and, for every other contender as the
    base, the median paired ratio (``vs_<base>``, ``vs_<base>_wall``)."""
    out: Summary = {}
    for size in sizes:
        total = totals[size]
        for name in contenders:
            s = samples[name, size]
            rates = [total / x[0] / 1e6 for x in s]
            row: dict[str, Any] = {
                "cpu_mbps": statistics.median(rates),
                "wall_mbps": statistics.median(total / x[1] / 1e6 for x in s),
                "cpu_q": _quartiles(rates),
                "faults_per_mib": statistics.median(x[2] for x in s) / (total / 1048576),
                "n": len(s),
            }
            for base in contenders:
                if base != name:
                    b = samples[base, size]
                    row[f"vs_{base}"] = _paired([x[0] for x in s], [y[0] for y in b])
                    row[f"vs_{base}_wall"] = _paired([x[1] for x in s], [y[1] for y in b])
            out[name, size] = row
    return out


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 4:
        return (min(values), max(values))
    q = statistics.quantiles(values, n=4)
    return (q[0], q[2])


def from_pytest_json(path: str) -> tuple[Summary, list[int], list[str]]:
    """Rates from pytest-benchmark --benchmark-json (not interleaved)."""
    with open(path) as f:
        data = json.load(f)
    medians = {}
    sizes, names = set(), set()
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info", {})
        if "contender" not in extra:
            continue
        name, size = extra["contender"], extra["write_size"]
        sizes.add(size)
        names.add(name)
        medians[name, size] = (extra["bytes_per_op"], bench["stats"]["median"])
    out: Summary = {}
    for (name, size), (total, median) in medians.items():
        rate = total / median / 1e6
        out[name, size] = {"wall_mbps": rate, "cpu_mbps": rate, "n": 1}
    for (name, size), row in out.items():
        for base in names - {name}:
            if (base, size) in out:
                row[f"vs_{base}"] = row["wall_mbps"] / out[base, size]["wall_mbps"]
    return out, sorted(sizes), [c for c in LABELS if c in names]


# ---------------------------------------------------------------------------
# output

def _rate(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _mark(name: str, base: str, size: int, ratio: float) -> str:
    """✓ or ✗ where a ratio has a target."""
    target = {("tlsfast", "c"): TARGET, ("tlsfast-glue", "c"): GLUE_TARGETS.get(size)}.get((name, base))
    if target is None:
        return ""
    return " ✓" if ratio >= target else " ✗"


def table(summary: Summary, sizes: list[int], contenders: list[str],
          ratios: Sequence[tuple[str, str]], key: str = "cpu_mbps") -> str:
    """MB/s of ``contenders`` and the ``ratios`` columns among them (those whose
    two sides were measured), one row per write size."""
    ratios = [(name, base) for name, base in ratios if name in contenders and base in contenders]
    head = (["write"] + [f"{LABELS[c]} MB/s" for c in contenders]
            + [f"{_SHORT[name]} / {_SHORT[base]}" for name, base in ratios])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    suffix = "" if key == "cpu_mbps" else "_wall"
    for size in sizes:
        cells = [size_label(size)] + [_rate(summary[c, size][key]) for c in contenders]
        for name, base in ratios:
            row = summary[name, size]
            r = row[f"vs_{base}{suffix}"] if f"vs_{base}{suffix}" in row else row[f"vs_{base}"]
            cells.append(f"{r:.2f}{_mark(name, base, size, r)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread_table(summary: Summary, sizes: list[int], contenders: list[str]) -> str:
    lines = ["| write | " + " | ".join(f"{LABELS[c]} (p25–p75 MB/s; faults/MiB)"
                                     for c in contenders) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(contenders)) + "|"]
    for size in sizes:
        cells = [size_label(size)]
        for c in contenders:
            lo, hi = summary[c, size]["cpu_q"]
            cells.append((f"{lo:,.0f}–{hi:,.0f}" if hi >= 100 else f"{lo:,.1f}–{hi:,.1f}")
                         + f"; {summary[c, size]['faults_per_mib']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(summary: Summary, sizes: list[int]) -> str:
    lines = [f"| write | engine / C (target ≥ {TARGET}) | pyOpenSSL / C (earlier) | "
             "stdlib / C (earlier) | C reference MB/s (earlier) |",
             "|---|---:|---:|---:|---:|"]
    for size in sizes:
        e = summary["tlsfast", size]["vs_c"]
        p = summary["twisted", size]["vs_c"]
        s = summary["asyncio", size]["vs_c"]
        ref = summary["c", size]["cpu_mbps"]
        lines.append(
            f"| {size_label(size)} | {e:.2f}{_mark('tlsfast', 'c', size, e)} | "
            f"{p:.2f} ({EARLIER['twisted'][size]:.2f}) | {s:.2f} ({EARLIER['asyncio'][size]:.2f}) | "
            f"{ref:,.0f} ({EARLIER_REFERENCE_MBPS[size]:,}) |")
    return "\n".join(lines)


def glue_targets_table(summary: Summary, sizes: list[int]) -> str:
    """The glue against its targets, to three places: near a target, two
    would print 0.80 for a 0.797 that misses 0.8."""
    lines = ["| write | tlsfast glue / C (target; earlier) | stock glue / C (earlier) | "
             "engine / tlsfast glue |", "|---|---:|---:|---:|"]
    for size in sizes:
        g = summary["tlsfast-glue", size]["vs_c"]
        stock = summary["twisted-glue", size]["vs_c"]
        earlier_glue = EARLIER["tlsfast-glue"].get(size)
        earlier_stock = EARLIER["twisted-glue"].get(size)
        lines.append(
            f"| {size_label(size)} | {g:.3f}{_mark('tlsfast-glue', 'c', size, g)} "
            f"(≥ {GLUE_TARGETS[size]}; {'–' if earlier_glue is None else f'{earlier_glue:.2f}'}) | "
            f"{stock:.3f} ({'–' if earlier_stock is None else f'{earlier_stock:.2f}'}) | "
            f"{summary['tlsfast', size]['vs_tlsfast-glue']:.2f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# where the time goes (64 B writes)

def _per_call(stmt: str, globs: dict[str, Any], number: int) -> float:
    """Best-of-7 seconds per execution of ``stmt`` (CPU time of this thread)."""
    timer = timeit.Timer(stmt, globals=globs, timer=time.thread_time)
    return min(timer.repeat(repeat=7, number=number)) / number


def overhead(write_size: int = 64, writes: int = 4096) -> list[tuple[str, float, str]]:
    from tlsfast import TLSEngine

    out: list[tuple[str, float, str]] = []
    transfers = {name: engine.make(name, write_size, write_size * writes) for name in LABELS}
    eng = transfers["tlsfast"]
    assert isinstance(eng, engine.EngineTransfer)
    client, server = eng.client, eng.server

    def row(what: str, seconds: float, note: str = "") -> None:
        out.append((what, seconds * 1e9, note))

    def per_write(t: engine.Transfer) -> float:
        return _per_call("t.run()", {"t": t}, 3) / writes

    row("C reference: one write end to end (SSL_write, BIO_read x2, BIO_write, SSL_read x2)",
        per_write(transfers["c"]))
    row("engine: `server.receive(client.send(m))` per write, in the benchmark loop", per_write(eng))
    row("stdlib SSLObject loop, per write", per_write(transfers["asyncio"]))
    row("pyOpenSSL (Twisted) loop, per write", per_write(transfers["twisted"]))
    row("tlsfast glue: `write(m)` + `dataReceived(transport.value())` per write",
        per_write(transfers["tlsfast-glue"]))
    row("stock Twisted glue, the same per write", per_write(transfers["twisted-glue"]))
    row("engine `outgoing()` with nothing queued (empty call: method call + BIO_ctrl)",
        _per_call("f()", {"f": client.outgoing}, 200000))
    row("engine `receive(b\"\")` (empty call + SSL_read/SSL_get_error want-read)",
        _per_call("f(b'')", {"f": server.receive}, 200000))
    row("engine `send(b\"\")` (empty call + buffer export + BIO_ctrl)",
        _per_call("f(b'')", {"f": client.send}, 200000))
    row("Python: the loop itself, `append(f(g(m)))` with f, g = builtins `id`",
        _per_call("for _ in r: append(f(g(m)))",
                  {"r": range(writes), "append": [].append, "f": id, "g": id, "m": eng.message}, 1)
        / writes, "per iteration")
    row("Python: `bytes(86)` (a 86-byte bytes object: 64 B + 22 B TLS 1.3 record overhead)",
        _per_call("f(86)", {"f": bytes}, 200000), "includes a call")
    row("Python: `id(86)` (builtin call baseline)", _per_call("f(86)", {"f": id}, 200000))
    row("`TLSEngine(conn)`: binding an engine to an existing Connection",
        _per_call("E(c)", {"E": TLSEngine, "c": client.connection}, 100000))
    return out


def overhead_markdown(rows: list[tuple[str, float, str]]) -> str:
    lines = ["| what | ns (thread CPU, best of 7) | note |", "|---|---:|---|"]
    for what, ns, note in rows:
        lines.append(f"| {what} | {ns:,.0f} | {note} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------

def _print_tables(summary: Summary, sizes: list[int], contenders: list[str], key: str) -> None:
    for group, ratios in ((CONTENDERS, ENGINE_RATIOS), (GLUE_CONTENDERS + ("c",), GLUE_RATIOS)):
        shown = [c for c in group if c in contenders]
        if shown:
            print(table(summary, sizes, shown, ratios, key) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="at most this many rounds")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="stop starting new rounds after this long (default 60)")
    parser.add_argument("--sizes", default=",".join(map(str, WRITE_SIZES)))
    parser.add_argument("--contenders", default=",".join(CONTENDERS + GLUE_CONTENDERS),
                        help="comma-separated, from: " + ", ".join(LABELS))
    parser.add_argument("--rebuild-every", type=int, default=5, metavar="N",
                        help="new connection pairs (new buffer placement) every N rounds; "
                             "0 = keep one set (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the layout padding")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (sched_setaffinity)")
    parser.add_argument("--json", metavar="FILE",
                        help="summarise pytest-benchmark --benchmark-json FILE instead of measuring")
    parser.add_argument("--overhead", action="store_true",
                        help="also measure per-call costs at 64 B (where the time goes)")
    parser.add_argument("--save", metavar="FILE", help="write raw samples and summary as JSON")
    args = parser.parse_args(argv)
    contenders = args.contenders.split(",")
    unknown = [c for c in contenders if c not in LABELS]
    if unknown:
        parser.error(f"unknown contender {unknown[0]!r} (choose from {', '.join(LABELS)})")

    if args.json:
        summary, sizes, contenders = from_pytest_json(args.json)
        print(f"From {args.json} (pytest-benchmark medians, wall clock, not interleaved)\n")
        _print_tables(summary, sizes, contenders, "wall_mbps")
        return 0

    _reexec_with_openssl_conf()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    sizes = [int(s) for s in args.sizes.split(",")]
    samples, totals, info, rounds, elapsed = measure(
        sizes, contenders, args.rounds, args.seconds, args.rebuild_every, args.seed)
    summary = summarise(samples, totals, sizes, contenders)
    _print_report(summary, sizes, contenders, totals, info, rounds, elapsed, args)
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"samples": {f"{n}/{s}": v for (n, s), v in samples.items()},
                       "summary": {f"{n}/{s}": v for (n, s), v in summary.items()},
                       "rounds": rounds, "totals": totals}, f, indent=1)
    return 0


def _print_report(summary: Summary, sizes: list[int], contenders: list[str], totals: dict[int, int],
                  info: dict, rounds: int, elapsed: float, args: argparse.Namespace) -> None:
    import ssl

    import OpenSSL
    from cryptography.hazmat.backends.openssl import backend

    print(f"{rounds} interleaved rounds in {elapsed:.0f} s, new connection pairs every "
          f"{args.rebuild_every or 'never'} rounds; bytes per round per contender: "
          + ", ".join(f"{size_label(s)} writes: {totals[s] // 1024} KiB" for s in sizes))
    print(f"pyOpenSSL {OpenSSL.__version__}, {backend.openssl_version_text()} (engine, pyOpenSSL, glue, C); "
          f"stdlib: {ssl.OPENSSL_VERSION}; python {sys.version.split()[0]}; "
          f"affinity {sorted(os.sched_getaffinity(0))}; loadavg {os.getloadavg()[0]:.2f}")
    negotiated = sorted({(n, i.get("cipher"), i.get("group")) for (n, _), i in info.items()})
    print("negotiated: " + "; ".join(f"{LABELS[n]}: {c}, {g}" for n, c, g in negotiated))
    print("\nMB/s by thread CPU time (median over rounds); ratios are medians of per-round pairs\n")
    _print_tables(summary, sizes, contenders, "cpu_mbps")
    print("Same rounds, MB/s by wall clock\n")
    _print_tables(summary, sizes, contenders, "wall_mbps")
    print("Spread (CPU time): interquartile range over rounds; median minor page faults per MiB moved\n")
    print(spread_table(summary, sizes, contenders))
    if set(sizes) >= set(EARLIER_REFERENCE_MBPS) and set(contenders) >= set(CONTENDERS):
        print("\nAgainst the targets (CPU-time ratios; in parentheses: measured earlier)\n")
        print(targets_table(summary, sizes))
    if set(contenders) >= {"tlsfast", "c", *GLUE_CONTENDERS}:
        print("\nThe glue in memory against issue #14's targets (CPU-time ratios)\n")
        print(glue_targets_table(summary, [s for s in sizes if s in GLUE_TARGETS]))
    if args.overhead:
        print("\nPer-call costs at 64 B writes (single layout, best of 7: indicative only)\n")
        print(overhead_markdown(overhead()))


if __name__ == "__main__":
    sys.exit(main())
