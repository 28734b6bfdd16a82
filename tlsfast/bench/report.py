"""
What ``tlsfast bench`` shows and writes: a rich table per result, the JSON
document (``--json``), a markdown table (for docs/) and the plot (``--plot``,
matplotlib, the ``plot`` extra).
"""

from __future__ import annotations

import json
import math
import os
import platform
import ssl
import sys

from tlsfast.bench.engine import LABELS as ENGINE_LABELS
from tlsfast.bench.runner import (
    BASELINE,
    LATENCY_PERCENTILES,
    STACK_LABELS,
    STACKS,
    TARGET,
    Result,
)

JSON_FORMAT = 1


def label(result: Result, stack: str) -> str:
    if stack == TARGET:
        return f"target {result.params.get('target', '')}".rstrip()
    return (ENGINE_LABELS if result.scenario == "engine" else STACK_LABELS).get(stack, stack)


def number(value: float | None, digits: int = 3) -> str:
    """Three significant digits, thousands separated."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    places = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return f"{value:,.{places}f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}×"


def _span(low: float, high: float) -> str:
    """min–max; a dash when not measured (NaN: a target's CPU time)."""
    return "–" if math.isnan(low) or math.isnan(high) else f"{number(low)}–{number(high)}"


def rows(result: Result, short: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows shared by the rich and the markdown tables (``short``:
    stack keys and terse headers, to fit an 80-column terminal)."""
    summary = result.summary()
    if short:
        header, body = rows(result)
        if result.scenario != "idle":
            header = ["stack", "op/s", "min–max", "×twisted", "CPU µs/op", "min–max", "×twisted", "n"] + header[8:]
        for row, stack in zip(body, summary):
            row[0] = stack
        return header, body
    header, body = _rows(result, summary)
    if any("latency_p50_us" in row for row in summary.values()):
        header += [f"{name} µs" for name in LATENCY_PERCENTILES]
        for row, stats in zip(body, summary.values()):
            row += [number(stats.get(f"latency_{name}_us")) for name in LATENCY_PERCENTILES]
    if result.flags:  # only then: an unflagged run keeps its columns
        header.append("flags")
        for row, stack in zip(body, summary):
            row.append(", ".join(dict.fromkeys(why.split()[0].rstrip(":") for why in result.flags.get(stack, []))))
    return header, body


def _rows(result: Result, summary: dict) -> tuple[list[str], list[list[str]]]:
    if result.scenario == "idle":
        header = ["stack", "KiB per connection (median)", "min–max", f"vs {BASELINE}"]
        body = [[label(result, stack), number(row["cpu_us_per_op_median"]),
                 _span(row['cpu_us_per_op_min'], row['cpu_us_per_op_max']),
                 _ratio(row["cpu_vs_twisted"])] for stack, row in summary.items()]
        return header, body
    unit = result.unit
    header = ["stack", f"{unit}/s (median)", "min–max", f"rate vs {BASELINE}",
              f"CPU µs/{unit} (median)", "min–max", f"CPU vs {BASELINE}", "n"]
    body = []
    for stack, row in summary.items():
        body.append([
            label(result, stack), number(row["rate_median"]),
            _span(row['rate_min'], row['rate_max']), _ratio(row["rate_vs_twisted"]),
            number(row["cpu_us_per_op_median"]),
            _span(row['cpu_us_per_op_min'], row['cpu_us_per_op_max']),
            _ratio(row["cpu_vs_twisted"]), str(row["n"])])
    return header, body


def negotiated_line(result: Result) -> str:
    seen: dict[str, list[str]] = {}
    order = {stack: index for index, stack in enumerate(STACKS)}
    for stack, info in sorted(result.negotiated.items(), key=lambda item: order.get(item[0], len(order))):
        text = (f"{info.get('version', '?')} {info.get('cipher', '?')} {info.get('group', '?')}"
                + (" mTLS" if info.get("mtls") else ""))
        seen.setdefault(text, []).append(stack)
    return "; ".join(f"{text} ({', '.join(stacks)})" for text, stacks in seen.items())


def flag_lines(result: Result) -> list[str]:
    """One line per flagged stack: why its row is marked."""
    return [f"flagged {stack}: {'; '.join(why)}" for stack, why in result.flags.items()]


def rich_tables(results: list[Result]):
    from rich import box
    from rich.table import Table

    tables = []
    for result in results:
        if not result.samples:
            continue
        header, body = rows(result, short=True)
        measured = (f"measured: {result.cpu_label}" if result.scenario == "idle"
                    else f"op = one {result.unit}; CPU: {result.cpu_label}")
        caption = f"{measured}; " + ", ".join(
            f"{stack} = {label(result, stack)}" for stack in result.summary())
        if result.negotiated:
            caption += f"; negotiated: {negotiated_line(result)}"
        for note in dict.fromkeys(result.notes + flag_lines(result)):
            caption += f"\n{note}"
        table = Table(title=result.title, caption=caption, caption_justify="left", box=box.SIMPLE_HEAD)
        for index, name in enumerate(header):
            table.add_column(name, justify="left" if index == 0 else "right", overflow="fold")
        for row in body:
            table.add_row(*row)
        tables.append(table)
    return tables


def markdown(results: list[Result]) -> str:
    out = []
    for result in results:
        if not result.samples:
            continue
        header, body = rows(result)
        out.append(f"**{result.title}** (CPU: {result.cpu_label})\n")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        out.extend("| " + " | ".join(row) + " |" for row in body)
        if result.negotiated:
            out.append(f"\nNegotiated: {negotiated_line(result)}")
        for line in flag_lines(result):
            out.append(f"\n{line}")
        out.append("")
    return "\n".join(out)


PACKAGES = ("tlsfast", "twisted", "pyopenssl", "cryptography", "cffi", "uvloop", "rich", "matplotlib")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def environment(settings=None) -> dict:
    """Where a run ran: CPU, kernel, core pinning, Python, both OpenSSL builds
    and the packages that take part (``None``: not installed)."""
    from cryptography.hazmat.backends.openssl import backend

    import tlsfast

    packages = _package_versions()
    return {
        "python": sys.version.split()[0], "implementation": platform.python_implementation(),
        "platform": platform.platform(), "kernel": platform.release(), "machine": platform.machine(),
        "cpu_model": _cpu_model(), "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "server_core": getattr(settings, "server_core", None), "client_core": getattr(settings, "client_core", None),
        "loadavg": list(os.getloadavg()),
        "tlsfast": packages["tlsfast"] or "?", "accelerated": tlsfast.ACCELERATED,
        "twisted": packages["twisted"], "pyopenssl": packages["pyopenssl"], "uvloop": packages["uvloop"],
        "openssl_bundled": backend.openssl_version_text(), "openssl_stdlib": ssl.OPENSSL_VERSION,
        "packages": packages,
    }


def document(results: list[Result], settings, argv: list[str], interrupted: bool, elapsed: float,
             unavailable: dict[str, str] | None = None, hints: list[str] | None = None) -> dict:
    import datetime
    from dataclasses import asdict

    return {"format": JSON_FORMAT, "command": ["tlsfast", "bench", *argv], "interrupted": interrupted,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "elapsed_seconds": elapsed, "settings": asdict(settings), "tls": settings.tls.to_json(),
            "unavailable": unavailable or {}, "hints": hints or [], "environment": environment(settings),
            "results": [r.to_json() for r in results if r.samples]}


def load(path: str) -> tuple[dict, list[Result]]:
    """A document written by ``--json`` and its results; ValueError (one line)
    when the file cannot be one."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT or not isinstance(doc.get("results"), list):
        raise ValueError(f"{path} is not a tlsfast bench --json file (format {JSON_FORMAT})")
    try:
        return doc, [Result.from_json(result) for result in doc["results"]]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: a result is malformed ({e!r})") from None


CSV_COLUMNS = ("key", "scenario", "unit", "stack", "n", "rate_median", "rate_min", "rate_max",
               "cpu_us_per_op_median", "cpu_us_per_op_min", "cpu_us_per_op_max", "rate_vs_twisted",
               "cpu_vs_twisted", "tls_version", "cipher", "group", "key_type", "mtls", "flags")


def write_csv(path: str, results: list[Result], tls: dict) -> None:
    """One line per scenario and stack: the summary, the TLS parameters and the flags."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for result in results:
            for stack, row in result.summary().items():
                values = dict(row, key=result.key, scenario=result.scenario, unit=result.unit, stack=stack,
                              tls_version=tls.get("version"), flags="; ".join(result.flags.get(stack, [])),
                              **{k: tls.get(k) for k in ("cipher", "group", "key_type", "mtls")})
                writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])


def write_json(path: str, doc: dict) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


COLORS = {"tcp": "#9e9e9e", "twisted": "#1f77b4", "tlsfast": "#d62728", "asyncio": "#2ca02c",
          "uvloop": "#17becf", "c": "#7f7f7f"}


def sweep_of(result: Result) -> dict | None:
    """``{"axis": "size"|"connections", "value": N}`` for a point of a --sizes/--conns sweep."""
    return result.params.get("sweep")


def plot(results: list[Result], path: str, subtitle: str = "") -> None:
    """Draw a run: line plots for its sweeps (:func:`plot_sweeps`), bars for the rest (:func:`plot_bars`)."""
    results = [r for r in results if r.samples]
    if not results:
        raise ValueError("nothing was measured")
    sweeps = [r for r in results if sweep_of(r)]
    others = [r for r in results if not sweep_of(r)]
    if sweeps:
        plot_sweeps(sweeps, path if not others else _suffixed(path, "-sweeps"), subtitle)
    if others:
        plot_bars(others, path, subtitle)


def _suffixed(path: str, suffix: str) -> str:
    root, extension = os.path.splitext(path)
    return root + suffix + extension


def plot_sweeps(results: list[Result], path: str, subtitle: str = "") -> None:
    """Per scenario and swept axis, two panels: the rate and the CPU per
    operation against message size or connection count (log scale), one
    line per stack (median, whiskers min–max over repetitions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        sweep = sweep_of(result)
        assert sweep is not None
        groups.setdefault((result.key.split(" ")[0], sweep["axis"]), []).append(result)
    figure, axes = plt.subplots(len(groups), 2, figsize=(11, 3.6 * len(groups)), squeeze=False)
    for line, ((name, axis_name), points) in zip(axes, groups.items()):
        points.sort(key=lambda r: sweep_of(r)["value"])  # type: ignore[index]  # all swept (above)
        unit = points[0].unit
        for panel, (metric, ylabel) in zip(line, (("rate", f"{unit}/s"),
                                                    ("cpu_us_per_op", f"server CPU µs per {unit}"))):
            summaries = [(sweep_of(r)["value"], r.summary()) for r in points]  # type: ignore[index]  # swept
            stacks = [stack for stack in STACKS if any(stack in summary for _, summary in summaries)]
            for stack in stacks:
                xs = [x for x, summary in summaries if stack in summary]
                rows = [summary[stack] for _, summary in summaries if stack in summary]
                medians = [row[f"{metric}_median"] for row in rows]
                errors = [[m - row[f"{metric}_min"] for m, row in zip(medians, rows)],
                          [row[f"{metric}_max"] - m for m, row in zip(medians, rows)]]
                panel.errorbar(xs, medians, yerr=errors, marker="o", markersize=3, capsize=2,
                               color=COLORS.get(stack, "#999999"), label=label(points[0], stack))
            values = [x for x, _ in summaries]
            panel.set_xscale("log")
            panel.set_xticks(values, [str(v) for v in values])
            panel.minorticks_off()
            everything = [summary[stack][f"{metric}_median"] for _, summary in summaries for stack in summary]
            if min(everything) > 0 and max(everything) / min(everything) > 20:
                panel.set_yscale("log")
            panel.set_xlabel("message size, bytes" if name == "echo" and axis_name == "size" else
                             "write size, bytes" if axis_name == "size" else "concurrent connections", fontsize=8)
            panel.set_ylabel(ylabel, fontsize=8)
            panel.set_title(f"{name}: {ylabel} against {axis_name}", fontsize=8)
            panel.tick_params(labelsize=7)
            panel.grid(True, linewidth=0.3)
        line[0].legend(fontsize=7)
    import textwrap

    figure.suptitle("\n".join(["tlsfast bench sweeps: median over repetitions, whiskers min–max"]
                              + textwrap.wrap(subtitle, 150)), fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.04 * (1 + len(textwrap.wrap(subtitle, 150))) / len(groups)))
    figure.savefig(path, format="png", dpi=110)
    plt.close(figure)


def plot_bars(results: list[Result], path: str, subtitle: str = "") -> None:
    """One panel per result: operations per CPU-second relative to stock Twisted
    (bars: median; whiskers: min–max over repetitions), labelled with the
    median rate and CPU per operation.  CPU time, not the rate, is drawn
    because it stays steady on a busy machine where rates swing 2-3x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(results))
    lines = (len(results) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(5.4 * columns, 3.8 * lines), squeeze=False)
    for axis, result in zip(axes.flat, results):
        summary = result.summary()
        stacks = list(summary)
        idle = result.scenario == "idle"
        base = summary.get(BASELINE)
        reference = base["cpu_us_per_op_median"] if base else 1.0
        # idle: memory per connection relative to Twisted (lower is better), else
        # CPU efficiency relative to Twisted (higher is better)
        if idle:
            medians = [summary[s]["cpu_us_per_op_median"] / reference for s in stacks]
            low = [summary[s]["cpu_us_per_op_min"] / reference for s in stacks]
            high = [summary[s]["cpu_us_per_op_max"] / reference for s in stacks]
        else:
            medians = [reference / summary[s]["cpu_us_per_op_median"] for s in stacks]
            low = [reference / summary[s]["cpu_us_per_op_max"] for s in stacks]
            high = [reference / summary[s]["cpu_us_per_op_min"] for s in stacks]
        errors = [[max(m - lo, 0) for m, lo in zip(medians, low)], [max(h - m, 0) for m, h in zip(medians, high)]]
        bars = axis.bar(range(len(stacks)), medians, yerr=errors, capsize=3,
                        color=[COLORS.get(s, "#999999") for s in stacks])
        for bar, stack, top in zip(bars, stacks, high):
            row = summary[stack]
            text = (f"{number(row['cpu_us_per_op_median'])} KiB" if idle
                    else f"{number(row['rate_median'])}/s\n{number(row['cpu_us_per_op_median'])} µs")
            axis.annotate(text, (bar.get_x() + bar.get_width() / 2, top), xytext=(0, 2),
                          textcoords="offset points", ha="center", va="bottom", fontsize=7)
        axis.set_xticks(range(len(stacks)), stacks, fontsize=8)
        axis.axhline(1.0, color="black", linewidth=0.6, linestyle=":")
        axis.set_ylim(0, max(high) * 1.3)
        if idle:
            axis.set_ylabel(f"memory per connection vs {BASELINE}", fontsize=8)
        else:
            axis.set_ylabel(f"{result.unit}s per CPU-second vs {BASELINE}", fontsize=8)
        axis.set_title(result.title, fontsize=8)
    for axis in list(axes.flat)[len(results):]:
        axis.set_visible(False)
    figure.suptitle("tlsfast bench: work per CPU-second relative to stock Twisted (higher is better; "
                    "CPU of the server process, engine: of the one thread); whiskers: min–max; "
                    "labels: median rate and CPU µs per op" + (f"\n{subtitle}" if subtitle else ""), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=110)
    plt.close(figure)


def comparison_table(rows):
    """``tlsfast bench compare``'s table (rows from :func:`tlsfast.bench.compare.compare`)."""
    from rich import box
    from rich.table import Table

    table = Table(title="B against A: medians, B/A and the verdict of a t-test (95 %) on the repetitions",
                  box=box.SIMPLE_HEAD, caption_justify="left",
                  caption="CPU: the server process's CPU µs per op (engine: the thread's; idle: KiB per "
                          "connection); faster = less CPU per op, or a higher rate")
    for name in ("scenario", "stack", "CPU A", "CPU B", "B/A", "CPU verdict", "rate A", "rate B", "B/A",
                 "rate verdict"):
        table.add_column(name, justify="left" if name in ("scenario", "stack") or "verdict" in name else "right")
    for row in rows:
        cpu_verdict, rate_verdict = row.verdicts()
        rate = row.rate
        table.add_row(row.key, row.stack, number(row.cpu.median_a), number(row.cpu.median_b),
                      _ratio(row.cpu.ratio), cpu_verdict,
                      number(rate.median_a) if rate else "", number(rate.median_b) if rate else "",
                      _ratio(rate.ratio) if rate else "", rate_verdict)
    return table
