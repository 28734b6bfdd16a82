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

from tlsfast.bench.runner import BASELINE, ENGINE_LABELS, STACK_LABELS, STACKS, Result

JSON_FORMAT = 1


def label(result: Result, stack: str) -> str:
    return (ENGINE_LABELS if result.scenario == "engine" else STACK_LABELS).get(stack, stack)


def _number(value: float | None, digits: int = 3) -> str:
    """Three significant digits, thousands separated."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    places = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return f"{value:,.{places}f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


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
    if result.flags:  # only then: an unflagged run keeps its columns
        header.append("flags")
        for row, stack in zip(body, summary):
            row.append(", ".join(dict.fromkeys(why.split()[0].rstrip(":") for why in result.flags.get(stack, []))))
    return header, body


def _rows(result: Result, summary: dict) -> tuple[list[str], list[list[str]]]:
    if result.scenario == "idle":
        header = ["stack", "KiB per connection (median)", "min–max", f"vs {BASELINE}"]
        body = [[label(result, stack), _number(row["cpu_us_per_op_median"]),
                 f"{_number(row['cpu_us_per_op_min'])}–{_number(row['cpu_us_per_op_max'])}",
                 _ratio(row["cpu_vs_twisted"])] for stack, row in summary.items()]
        return header, body
    unit = result.unit
    header = ["stack", f"{unit}/s (median)", "min–max", f"rate vs {BASELINE}",
              f"CPU µs/{unit} (median)", "min–max", f"CPU vs {BASELINE}", "n"]
    body = []
    for stack, row in summary.items():
        body.append([
            label(result, stack), _number(row["rate_median"]),
            f"{_number(row['rate_min'])}–{_number(row['rate_max'])}", _ratio(row["rate_vs_twisted"]),
            _number(row["cpu_us_per_op_median"]),
            f"{_number(row['cpu_us_per_op_min'])}–{_number(row['cpu_us_per_op_max'])}",
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


def environment() -> dict:
    import OpenSSL
    import twisted
    from cryptography.hazmat.backends.openssl import backend

    import tlsfast

    try:
        import uvloop
        uvloop_version = uvloop.__version__
    except ImportError:
        uvloop_version = None
    return {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()),
        "tlsfast": getattr(tlsfast, "__version__", "?"), "accelerated": tlsfast.ACCELERATED,
        "twisted": twisted.__version__, "pyopenssl": OpenSSL.__version__,
        "openssl_bundled": backend.openssl_version_text(), "openssl_stdlib": ssl.OPENSSL_VERSION,
        "uvloop": uvloop_version,
    }


def document(results: list[Result], settings, argv: list[str], interrupted: bool, elapsed: float,
             unavailable: dict[str, str] | None = None, hints: list[str] | None = None) -> dict:
    from dataclasses import asdict

    return {"format": JSON_FORMAT, "command": ["tlsfast", "bench", *argv], "interrupted": interrupted,
            "elapsed_seconds": elapsed, "settings": asdict(settings), "tls": settings.tls.to_json(),
            "unavailable": unavailable or {}, "hints": hints or [], "environment": environment(),
            "results": [r.to_json() for r in results if r.samples]}


def write_json(path: str, doc: dict) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


COLORS = {"tcp": "#9e9e9e", "twisted": "#1f77b4", "tlsfast": "#d62728", "asyncio": "#2ca02c",
          "uvloop": "#17becf", "c": "#7f7f7f"}


def plot(results: list[Result], path: str, subtitle: str = "") -> None:
    """One panel per result: operations per CPU-second relative to stock Twisted
    (bars: median; whiskers: min–max over repetitions), labelled with the
    median rate and CPU per operation.  CPU time, not the rate, is drawn
    because it stays steady on a busy machine where rates swing 2-3x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in results if r.samples]
    if not results:
        raise ValueError("nothing was measured")
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
            text = (f"{_number(row['cpu_us_per_op_median'])} KiB" if idle
                    else f"{_number(row['rate_median'])}/s\n{_number(row['cpu_us_per_op_median'])} µs")
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
