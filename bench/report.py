"""
Interleaved side-by-side transfer benchmark -> markdown table.

    .venv/bin/python bench/report.py                 # ~60-90 s, prints the table
    .venv/bin/python bench/report.py --cpu 0         # pinned to core 0
    .venv/bin/python bench/report.py --overhead      # + where the time goes at 64 B
    .venv/bin/python bench/report.py --json out.json # table from pytest-benchmark's
                                                     #   --benchmark-json output instead

Machines here are noisy (rates swing 2-3x within minutes, and others run tests
on the same two cores), so instead of timing one contender for a second and
then the next, this runs many short rounds; in each round every contender
moves the same amount of data once per write size, in an order that rotates
from round to round.  Reported: the median over rounds of MB/s (10**6 bytes
per second) by thread CPU time (CLOCK_THREAD_CPUTIME_ID: time this thread
actually ran, so preemption by other processes does not count) and by wall
clock, and the median over rounds of the *paired* ratio (each contender vs the
C reference / the pyOpenSSL loop in the same round).

Every few rounds (--rebuild-every) all connection pairs are made anew with
random-sized allocations in between: at 16 KiB the engine/C ratio of one fixed
set of connections depends on where OpenSSL's and the results' buffers happen
to land (0.66 to 1.4 measured), so a single layout is not a measurement.  The
transfer code is bench/transfer.py, shared with the pytest-benchmark suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

LABELS = {
    "reference": "C reference",
    "engine": "tlsfast engine",
    "pyopenssl": "pyOpenSSL loop",
    "stdlib": "stdlib SSLObject",
}
# Fractions of the C reference measured earlier (issue text) and the target.
EARLIER = {
    "pyopenssl": {64: 0.10, 1024: 0.12, 16384: 0.35, 65536: 0.50},
    "stdlib": {64: 0.23, 1024: 0.27, 16384: 0.42, 65536: 0.47},
}
EARLIER_REFERENCE_MBPS = {64: 78, 1024: 880, 16384: 3100, 65536: 2800}
TARGET = 0.85


def _label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def _reexec_with_openssl_conf() -> None:
    """stdlib ssl can only be pinned through OPENSSL_CONF, read at startup."""
    if "OPENSSL_CONF" not in os.environ:
        os.environ["OPENSSL_CONF"] = os.path.join(HERE, "openssl.cnf")
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


# ---------------------------------------------------------------------------
# interleaved measurement

def measure(sizes, contenders, rounds, seconds, rebuild_every=5, seed=None):
    """The interleaved rounds of tlsfast.bench.engine.measure (the loop behind
    ``tlsfast bench engine``) on this suite's contenders: fresh connection
    pairs every ``rebuild_every`` rounds with random-sized allocations in
    between (see "memory layout" in docs/benchmarks.md), garbage collection
    between rounds, and a byte-for-byte check before and after."""
    from bench import transfer as T
    from tlsfast.bench import engine

    samples = {(name, size): [] for size in sizes for name in contenders}  # (cpu_s, wall_s, minor faults)
    info, done = {}, {}

    def collect(record):
        kind = record.pop("type")
        key = (record.pop("contender", None), record.pop("write_size", None))
        if kind == "negotiated":
            info[key] = record
        elif kind == "sample":
            samples[key].append((record["cpu_seconds"], record["wall_seconds"], record["minor_faults"]))
        else:
            done.update(record)

    engine.measure(T.pki(), sizes, contenders, rounds, seconds, rebuild_every, emit=collect,
                   seed=seed, make=T.make, collect_each_round=True, verify_at_end=True)
    totals = {size: T.TOTALS[size] for size in sizes}
    return samples, totals, info, done["rounds"], done["seconds"]


def summarise(samples, totals, sizes, contenders):
    """{(name, size): {...}} with median rates and paired ratios."""
    out = {}
    for size in sizes:
        total = totals[size]
        for name in contenders:
            s = samples[name, size]
            row = {
                "cpu_mbps": statistics.median(total / x[0] / 1e6 for x in s),
                "wall_mbps": statistics.median(total / x[1] / 1e6 for x in s),
                "cpu_q": _quartiles([total / x[0] / 1e6 for x in s]),
                "faults_per_mib": statistics.median(x[2] for x in s) / (total / 1048576),
                "n": len(s),
            }
            for base in ("reference", "pyopenssl"):
                if base in contenders and base != name:
                    b = samples[base, size]
                    row[f"vs_{base}"] = statistics.median(y[0] / x[0] for x, y in zip(s, b))
                    row[f"vs_{base}_wall"] = statistics.median(y[1] / x[1] for x, y in zip(s, b))
            out[name, size] = row
    return out


def _quartiles(values):
    if len(values) < 4:
        return (min(values), max(values))
    q = statistics.quantiles(values, n=4)
    return (q[0], q[2])


def from_pytest_json(path):
    """Rates from pytest-benchmark --benchmark-json (not interleaved)."""
    with open(path) as f:
        data = json.load(f)
    medians = {}
    sizes, contenders = set(), []
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info", {})
        if "contender" not in extra:
            continue
        name, size = extra["contender"], extra["write_size"]
        sizes.add(size)
        if name not in contenders:
            contenders.append(name)
        medians[name, size] = (extra["bytes_per_op"], bench["stats"]["median"])
    sizes = sorted(sizes)
    contenders = [c for c in LABELS if c in contenders]
    out = {}
    for (name, size), (total, median) in medians.items():
        row = {"wall_mbps": total / median / 1e6, "n": 1}
        row["cpu_mbps"] = row["wall_mbps"]
        out[name, size] = row
    for (name, size), row in out.items():
        for base in ("reference", "pyopenssl"):
            if (base, size) in out and base != name:
                row[f"vs_{base}"] = row["wall_mbps"] / out[base, size]["wall_mbps"]
    return out, sizes, contenders


# ---------------------------------------------------------------------------
# output

def table(summary, sizes, contenders, key="cpu_mbps"):
    lines = []
    head = ["write"] + [f"{LABELS[c]} MB/s" for c in contenders]
    ratio_cols = []
    for c in contenders:
        if c != "reference" and "reference" in contenders:
            ratio_cols.append((c, "reference", f"{LABELS[c]} / C"))
    if "engine" in contenders and "pyopenssl" in contenders:
        ratio_cols.append(("engine", "pyopenssl", "engine / pyOpenSSL"))
    if "stdlib" in contenders and "pyopenssl" in contenders:
        ratio_cols.append(("stdlib", "pyopenssl", "stdlib / pyOpenSSL"))
    head += [label for _, _, label in ratio_cols]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    suffix = "" if key == "cpu_mbps" else "_wall"
    for size in sizes:
        cells = [_label(size)]
        for c in contenders:
            cells.append(f"{summary[c, size][key]:,.1f}" if summary[c, size][key] < 100
                         else f"{summary[c, size][key]:,.0f}")
        for c, base, _ in ratio_cols:
            r = summary[c, size].get(f"vs_{base}{suffix}", summary[c, size].get(f"vs_{base}"))
            mark = ""
            if c == "engine" and base == "reference":
                mark = " ✓" if r >= TARGET else " ✗"
            cells.append(f"{r:.2f}{mark}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread_table(summary, sizes, contenders):
    lines = ["| write | " + " | ".join(f"{LABELS[c]} (p25–p75 MB/s; faults/MiB)"
                                     for c in contenders) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(contenders)) + "|"]
    for size in sizes:
        cells = [_label(size)]
        for c in contenders:
            lo, hi = summary[c, size]["cpu_q"]
            cells.append((f"{lo:,.0f}–{hi:,.0f}" if hi >= 100 else f"{lo:,.1f}–{hi:,.1f}")
                         + f"; {summary[c, size]['faults_per_mib']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(summary, sizes):
    lines = ["| write | engine / C (target ≥ 0.85) | pyOpenSSL / C (earlier) | "
             "stdlib / C (earlier) | C reference MB/s (earlier) |",
             "|---|---:|---:|---:|---:|"]
    for size in sizes:
        e = summary["engine", size]["vs_reference"]
        p = summary["pyopenssl", size]["vs_reference"]
        s = summary["stdlib", size]["vs_reference"]
        ref = summary["reference", size]["cpu_mbps"]
        lines.append(
            f"| {_label(size)} | {e:.2f} {'✓' if e >= TARGET else '✗'} | "
            f"{p:.2f} ({EARLIER['pyopenssl'][size]:.2f}) | {s:.2f} ({EARLIER['stdlib'][size]:.2f}) | "
            f"{ref:,.0f} ({EARLIER_REFERENCE_MBPS[size]:,}) |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# where the time goes (64 B writes)

def _per_call(stmt, globs, number):
    """Best-of-7 seconds per execution of ``stmt`` (CPU time of this thread)."""
    timer = timeit.Timer(stmt, globals=globs, timer=time.thread_time)
    return min(timer.repeat(repeat=7, number=number)) / number


def overhead(write_size=64, writes=4096):
    from bench import transfer as T

    out = []
    ref = T.make("reference", write_size, write_size * writes)
    eng = T.make("engine", write_size, write_size * writes)
    py = T.make("pyopenssl", write_size, write_size * writes)
    std = T.make("stdlib", write_size, write_size * writes)
    client, server = eng.client, eng.server
    message = eng.message

    def row(what, seconds, note=""):
        out.append((what, seconds * 1e9, note))

    def per_write(t):
        return _per_call("t.run()", {"t": t}, 3) / writes

    row("C reference: one write end to end (SSL_write, BIO_read x2, BIO_write, SSL_read x2)",
        per_write(ref))
    row("engine: `server.receive(client.send(m))` per write, in the benchmark loop", per_write(eng))
    row("stdlib SSLObject loop, per write", per_write(std))
    row("pyOpenSSL (Twisted) loop, per write", per_write(py))
    row("engine `outgoing()` with nothing queued (empty call: method call + BIO_ctrl)",
        _per_call("f()", {"f": client.outgoing}, 200000))
    row("engine `receive(b\"\")` (empty call + SSL_read/SSL_get_error want-read)",
        _per_call("f(b'')", {"f": server.receive}, 200000))
    row("engine `send(b\"\")` (empty call + buffer export + BIO_ctrl)",
        _per_call("f(b'')", {"f": client.send}, 200000))
    row("Python: the loop itself, `append(f(g(m)))` with f, g = builtins `id`",
        _per_call("for _ in r: append(f(g(m)))",
                  {"r": range(writes), "append": [].append, "f": id, "g": id, "m": message}, 1)
        / writes, "per iteration")
    row("Python: `bytes(86)` (a 86-byte bytes object: 64 B + 22 B TLS 1.3 record overhead)",
        _per_call("f(86)", {"f": bytes}, 200000), "includes a call")
    row("Python: `id(86)` (builtin call baseline)", _per_call("f(86)", {"f": id}, 200000))
    from OpenSSL._util import ffi

    from tlsfast import TLSEngine
    conn = eng.client.connection
    row("`TLSEngine(conn)`: binding an engine to an existing Connection",
        _per_call("E(c)", {"E": TLSEngine, "c": conn}, 100000))
    row("of which: one `ffi.cast('uintptr_t', cdata)` (the engine does three)",
        _per_call("f('uintptr_t', p)", {"f": ffi.cast, "p": conn._ssl}, 100000))

    return out


def overhead_markdown(rows):
    lines = ["| what | ns (thread CPU, best of 7) | note |", "|---|---:|---|"]
    for what, ns, note in rows:
        lines.append(f"| {what} | {ns:,.0f} | {note} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="at most this many rounds")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="stop starting new rounds after this long (default 60)")
    parser.add_argument("--sizes", default="64,1024,16384,65536")
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

    if args.json:
        summary, sizes, contenders = from_pytest_json(args.json)
        print(f"From {args.json} (pytest-benchmark medians, wall clock, not interleaved)\n")
        print(table(summary, sizes, contenders, key="wall_mbps"))
        return 0

    _reexec_with_openssl_conf()
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    sizes = [int(s) for s in args.sizes.split(",")]
    contenders = list(LABELS)
    samples, totals, info, rounds, elapsed = measure(
        sizes, contenders, args.rounds, args.seconds, args.rebuild_every, args.seed)
    summary = summarise(samples, totals, sizes, contenders)

    import ssl

    import OpenSSL
    from cryptography.hazmat.backends.openssl import backend

    print(f"{rounds} interleaved rounds in {elapsed:.0f} s, new connection pairs every "
          f"{args.rebuild_every or 'never'} rounds; bytes per round per contender: "
          + ", ".join(f"{_label(s)} writes: {totals[s] // 1024} KiB" for s in sizes))
    print(f"pyOpenSSL {OpenSSL.__version__}, {backend.openssl_version_text()} (engine, pyOpenSSL, C); "
          f"stdlib: {ssl.OPENSSL_VERSION}; python {sys.version.split()[0]}; "
          f"affinity {sorted(os.sched_getaffinity(0))}; loadavg {os.getloadavg()[0]:.2f}")
    negotiated = sorted({(n, i.get('cipher'), i.get('group')) for (n, _), i in info.items()})
    print("negotiated: " + "; ".join(f"{LABELS[n]}: {c}, {g}" for n, c, g in negotiated))
    print("\nMB/s by thread CPU time (median over rounds); ratios are medians of per-round pairs\n")
    print(table(summary, sizes, contenders, "cpu_mbps"))
    print("\nSame rounds, MB/s by wall clock\n")
    print(table(summary, sizes, contenders, "wall_mbps"))
    print("\nSpread (CPU time): interquartile range over rounds; median minor page faults "
          "per MiB moved\n")
    print(spread_table(summary, sizes, contenders))
    if set(sizes) >= set(EARLIER_REFERENCE_MBPS):
        print("\nAgainst the targets (CPU-time ratios; in parentheses: measured earlier)\n")
        print(targets_table(summary, sizes))
    if args.overhead:
        print("\nPer-call costs at 64 B writes (single layout, best of 7: indicative only)\n")
        print(overhead_markdown(overhead()))
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"samples": {f"{n}/{s}": v for (n, s), v in samples.items()},
                       "summary": {f"{n}/{s}": v for (n, s), v in summary.items()},
                       "rounds": rounds, "totals": totals}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
