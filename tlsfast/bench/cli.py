"""
The ``tlsfast bench`` command line: argument parsing, the progress display
and what a run prints.  :mod:`tlsfast.cli` only registers the subcommand
(:func:`add_parser`) and hands it the arguments; nothing here imports
:mod:`tlsfast.cli`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable

from tlsfast._cliutil import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    CommandError,
    OneLineParser,
    Unavailable,
    UsageError,
)

BENCH_DESCRIPTION = """\
Side-by-side benchmarks of tlsfast against stock Twisted TLS, asyncio (and
uvloop) with stdlib ssl, plain TCP and the engine's C reference loop.
Loopback scenarios (bulk, echo, handshake) run each stack's server in its own
process pinned to one core and an asyncio/stdlib-ssl load generator on the
other, stacks interleaved per repetition; they report the rate and the
server process's CPU time per operation (its CPU clock). handshake-client
turns it round: each stack's client against one stdlib-ssl server, the
client process's CPU per handshake. The engine scenario moves data in
memory, with no sockets.

tlsfast bench compare A.json B.json: B against A, per scenario and stack,
with a verdict from the spread of the repetitions; tlsfast bench plot A.json:
draw a saved run again; tlsfast bench proxy: the tlsfast proxy against
haproxy, stunnel and hitch; tlsfast bench breakdown: per-connection CPU and
Python calls by phase; tlsfast bench churn: RSS over many short connections
(each has --help).

exit status: 0 done, 1 a benchmark failed, 2 bad arguments, 3 cannot run
here (port in use, stack not installed, acceleration off, no matplotlib),
130 interrupted by Ctrl-C or SIGTERM (what was measured so far is still
printed and written).
"""

# --quick: what README's main command runs; about 60 s on a 2-core machine.
PROFILES = {
    "full": dict(reps=5, seconds=2.0, megabytes=256, engine_sizes="64,1024,16384,65536",
                 engine_seconds=30.0, engine_rounds=200),
    "quick": dict(reps=3, seconds=0.4, megabytes=16, engine_sizes="64,16384",
                  engine_seconds=4.0, engine_rounds=25),
}

SUMMARY = "loopback and in-memory benchmarks: tlsfast vs Twisted vs asyncio vs C"


def _run_parser() -> OneLineParser:
    """``tlsfast bench [SCENARIO ...] [options]``: measure."""
    from tlsfast.bench.runner import EXTRA_SCENARIOS, SCENARIOS, STACKS
    from tlsfast.bench.tlsconfig import CIPHERS, GROUPS, KEY_TYPES, TLS_VERSIONS

    bench = OneLineParser(prog="tlsfast bench", description=BENCH_DESCRIPTION,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                       help=f"any of {', '.join(SCENARIOS)} (default: all); also {', '.join(EXTRA_SCENARIOS)} "
                            "(server memory per idle connection)")
    bench.add_argument("--stacks", metavar="LIST",
                       help=f"comma-separated, from {', '.join(STACKS)} (default: all installed; "
                            "c only runs in the engine scenario, tcp and uvloop only in loopback ones)")
    bench.add_argument("--quick", action="store_true",
                       help="short settings (about 60 s on 2 cores): " + ", ".join(
                           f"{k.replace('_', '-')} {v}" for k, v in PROFILES["quick"].items()))
    group = bench.add_argument_group("loopback scenarios")
    group.add_argument("--reps", type=int, help="repetitions per stack (default 5)")
    group.add_argument("--seconds", type=float, help="echo/handshake: seconds per measurement (default 2)")
    group.add_argument("--size", type=int, default=64, help="echo: message size in bytes (default 64)")
    group.add_argument("--connections", type=int, default=1, help="concurrent connections (default 1)")
    group.add_argument("--megabytes", type=int, help="bulk: MiB per connection (default 256)")
    group.add_argument("--write-size", type=int, default=64 * 1024, help="bulk: client write size (default 65536)")
    group.add_argument("--target", metavar="HOST:PORT",
                       help="also measure this TLS server with the same load generator (echo: it must echo; "
                            "handshake: connect, handshake, close); alone unless --stacks names ours too")
    group.add_argument("--target-ca", metavar="PEM", help="check the target's certificate against these CAs "
                                                          "(default: no check)")
    group.add_argument("--target-name", metavar="NAME", help="server name to send to the target (default: HOST)")
    group.add_argument("--sizes", metavar="LIST",
                       help="sweep: echo message sizes and bulk write sizes, e.g. 64,1k,16k,64k (line plots "
                            "with --plot)")
    group.add_argument("--conns", metavar="LIST", help="sweep: connection counts, e.g. 1,10,100")
    group.add_argument("--no-resume", dest="resume", action="store_false",
                       help="handshake: skip resumed handshakes")
    group.add_argument("--port", type=int, default=0,
                       help="servers listen on PORT, PORT+1, ... (one per stack); default: any free port")
    group.add_argument("--server-core", type=int, default=0, help="pin servers (and the engine run) to this CPU")
    group.add_argument("--client-core", type=int, default=1, help="pin the load generator to this CPU")
    group = bench.add_argument_group("engine scenario")
    group.add_argument("--engine-sizes", metavar="LIST", help="write sizes in bytes (default 64,1024,16384,65536)")
    group.add_argument("--engine-seconds", type=float, help="stop starting rounds after this long (default 30)")
    group.add_argument("--engine-rounds", type=int, help="at most this many rounds (default 200)")
    group = bench.add_argument_group("TLS")
    group.add_argument("--tls-version", choices=TLS_VERSIONS, default="1.3", help="protocol version (default 1.3)")
    group.add_argument("--cipher", default="AES-128-GCM",
                       help=f"{', '.join(CIPHERS)}: the TLS 1.3 suite or the TLS 1.2 ECDHE suite for the key "
                            "type; OpenSSL's suite names are accepted too (default AES-128-GCM)")
    group.add_argument("--group", default="x25519",
                       help=f"key-exchange group: {', '.join(GROUPS)} or any name OpenSSL knows (default x25519)")
    group.add_argument("--key-type", choices=KEY_TYPES, default="ecdsa-p256",
                       help="the server's (and, with --mtls, the client's) key (default ecdsa-p256)")
    group.add_argument("--mtls", action="store_true", help="mutual TLS: servers require a client certificate")
    group = bench.add_argument_group("output")
    group.add_argument("--json", metavar="FILE", help="write settings, environment, samples and summaries")
    group.add_argument("--plot", metavar="FILE.png", help="draw the comparison (needs matplotlib: tlsfast[plot])")
    group.add_argument("--markdown", metavar="FILE", help="write the tables as markdown")
    group.add_argument("--csv", metavar="FILE", help="write one line per scenario and stack (summaries)")
    group.add_argument("--quiet", action="store_true", help="no progress display")
    return bench


def _installed(stack: str) -> str | None:
    """Why ``stack`` cannot run here, or None."""
    if stack == "uvloop":
        try:
            import uvloop  # noqa: F401 - imported only to learn whether it is installed
        except ImportError:
            return "uvloop is not installed (pip install uvloop)"
    if stack in ("tlsfast", "c"):
        import tlsfast

        if not tlsfast.ACCELERATED:
            return "tlsfast acceleration is not active (" + "; ".join(tlsfast.backend_info().problems) + ")"
    return None


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port); UsageError otherwise."""
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--target {text!r}: expected HOST:PORT with a port from 1 to 65535")
    return host, int(port)


_SUFFIXES = {"k": 1024, "m": 1024 * 1024}


def parse_sizes(option: str, text: str, suffixes: bool = True) -> list[int]:
    """``64,1k,16k`` -> [64, 1024, 16384] (k and m: binary multiples when
    ``suffixes``); UsageError naming ``option`` otherwise."""
    values = []
    for item in text.split(","):
        item = item.strip().lower()
        factor = _SUFFIXES.get(item[-1:], 1) if suffixes else 1
        digits = item[:-1] if factor != 1 else item
        if not digits.isdigit() or int(digits) < 1:
            allowed = "positive integers" + (" (k, m: ×1024, ×1024²)" if suffixes else "")
            raise UsageError(f"{option}: {item!r} is not one of {allowed}")
        values.append(int(digits) * factor)
    return sorted(set(values))


def _settings(args):
    from tlsfast.bench.runner import (
        ENGINE_STACKS,
        EXTRA_SCENARIOS,
        LOOPBACK_STACKS,
        SCENARIOS,
        STACKS,
        TARGET,
        TARGET_SCENARIOS,
        Settings,
        port_is_free,
    )
    from tlsfast.bench.tlsconfig import ConfigError, pin_context, resolve

    profile = PROFILES["quick" if args.quick else "full"]
    for name, value in profile.items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    target = parse_target(args.target) if args.target else None
    scenarios = list(dict.fromkeys(args.scenarios)) or list(TARGET_SCENARIOS if target else SCENARIOS)
    for scenario in scenarios:
        if scenario not in SCENARIOS + EXTRA_SCENARIOS:
            raise UsageError(f"unknown scenario {scenario!r} (choose from {', '.join(SCENARIOS + EXTRA_SCENARIOS)})")
    if args.stacks:
        stacks = list(dict.fromkeys(s.strip() for s in args.stacks.split(",") if s.strip()))
        for stack in stacks:
            if stack not in STACKS:
                raise UsageError(f"unknown stack {stack!r} (choose from {', '.join(STACKS)})")
        for stack in stacks:
            why = _installed(stack)
            if why:
                raise Unavailable(f"stack {stack!r} is not available: {why}")
    elif target:
        stacks = []  # the target alone
    else:
        stacks = [s for s in STACKS if _installed(s) is None]
    usable = {s: [x for x in stacks if x in (ENGINE_STACKS if s == "engine" else LOOPBACK_STACKS)]
              + ([TARGET] if target and s in TARGET_SCENARIOS else []) for s in scenarios}
    if not any(usable.values()):
        raise UsageError(f"none of the stacks {', '.join(stacks + ([TARGET] if target else []))} runs in "
                         f"{', '.join(scenarios)}" + (f" (a target runs in {', '.join(TARGET_SCENARIOS)})"
                                                      if target else ""))
    if args.target_ca and not os.path.isfile(args.target_ca):
        raise UsageError(f"--target-ca {args.target_ca}: no such file")
    try:
        params = resolve(args.tls_version, args.cipher, args.group, args.key_type, args.mtls)
        from OpenSSL import SSL

        pin_context(SSL.Context(SSL.TLS_METHOD), params)  # a group it does not know?
    except ConfigError as e:
        raise UsageError(str(e)) from None
    for name in ("reps", "connections", "megabytes", "size", "write_size", "engine_rounds"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.seconds <= 0 or args.engine_seconds <= 0:
        raise UsageError("--seconds and --engine-seconds must be positive")
    try:
        engine_sizes = [int(s) for s in args.engine_sizes.split(",")]
    except ValueError:
        raise UsageError(f"--engine-sizes: not a list of integers: {args.engine_sizes!r}") from None
    if any(s < 1 for s in engine_sizes):
        raise UsageError("--engine-sizes must be positive")

    sizes = parse_sizes("--sizes", args.sizes) if args.sizes else None
    conns = parse_sizes("--conns", args.conns, suffixes=False) if args.conns else None

    if args.port:
        # one server per stack of a loopback scenario, on PORT, PORT+1, ...
        servers = max((len([x for x in v if x != TARGET]) for k, v in usable.items() if k != "engine"), default=0)
        if not 0 < args.port <= 65535 - max(servers - 1, 0):
            raise UsageError(f"--port {args.port} is out of range")
        for port in range(args.port, args.port + servers):
            if not port_is_free(port):
                raise Unavailable(f"port {port} on 127.0.0.1 is in use "
                                  f"(--port {args.port} needs ports {args.port}-{args.port + servers - 1})")
    if args.plot:
        _need_matplotlib("--plot")
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    return Settings(
        scenarios=scenarios, stacks=stacks, reps=args.reps, seconds=args.seconds, size=args.size,
        connections=args.connections, megabytes=args.megabytes, write_size=args.write_size,
        resume=args.resume, engine_sizes=engine_sizes, engine_seconds=args.engine_seconds,
        engine_rounds=args.engine_rounds, cipher=params.cipher, group=params.group,
        tls_version=params.version, key_type=params.key_type, mtls=params.mtls, sizes=sizes, conns=conns,
        target=target, target_ca=args.target_ca, target_name=args.target_name,
        port=args.port,
        server_core=args.server_core if args.server_core in cores else None,
        client_core=args.client_core if args.client_core in cores else None)


class _Progress:
    """A rich progress bar on a terminal, one plain line per sample otherwise."""

    def __init__(self, total: int, quiet: bool):
        self.quiet = quiet
        self.live = None
        if quiet:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.live = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[last]}"),
                                 console=console, transient=True)
            self.task = self.live.add_task("tlsfast bench", total=total, last="starting servers")
            self.live.start()

    def __call__(self, event: str, **info) -> None:
        if self.quiet:
            return
        if event == "sample":
            result, sample = info["result"], info["sample"]
            text = (f"{result.key:18s} {sample.stack:8s} {sample.rate:12,.1f} {result.unit}/s "
                    f"{sample.cpu_us_per_op:10,.1f} µs CPU/{result.unit}")
            if self.live is not None:
                self.live.update(self.task, advance=1, description=result.key, last=text)
            else:
                print(text, file=sys.stderr, flush=True)
        elif event == "warmup" and self.live is not None:
            self.live.update(self.task, description=info["scenario"], last=f"warming up {info['stack']}")
        elif event == "engine-done" and self.live is not None:
            self.live.update(self.task, advance=info["skipped"])

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _show(results, settings, argv, interrupted, elapsed, unavailable: dict[str, str], hints: list[str]) -> None:
    from rich.console import Console

    from tlsfast.bench import report

    console = Console() if sys.stdout.isatty() else Console(width=170)
    env = report.environment()
    console.print(f"tlsfast bench {' '.join(argv)}".rstrip()
                  + f"  [{elapsed:.0f} s; requested {settings.tls.label()}; "
                  f"cryptography's {env['openssl_bundled']}, stdlib {env['openssl_stdlib']}; "
                  f"python {env['python']}; load average {env['loadavg'][0]:.2f}]", highlight=False)
    if interrupted:
        console.print("[bold red]interrupted[/]: results measured so far")
    for what, why in unavailable.items():
        console.print(f"[bold]unavailable[/] with these parameters: {what}: {why}", highlight=False)
    tables = report.rich_tables(results)
    if not tables:
        console.print("nothing was measured")
    for table in tables:
        console.print(table)
    console.print("×twisted: ratio of medians to stock Twisted (rate above 1 and CPU below 1 are better); "
                  "min–max: over repetitions (engine: over rounds).", highlight=False)
    for hint in hints:
        console.print(f"[bold yellow]hint[/]: {hint}", highlight=False)


def _bench(args: argparse.Namespace) -> int:
    from tlsfast.bench import noise, report
    from tlsfast.bench.runner import BenchError, Run, stop_children

    argv = args.argv
    try:
        settings = _settings(args)
    except CommandError as e:
        print(f"tlsfast bench: error: {e}", file=sys.stderr)
        return e.status

    def terminate(signum, frame):
        raise KeyboardInterrupt  # SIGTERM: stop like Ctrl-C, children included

    signal.signal(signal.SIGTERM, terminate)
    # Ctrl-C must work even when started with SIGINT ignored (a shell's
    # background job, nohup): Python then keeps SIG_IGN.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run = Run(settings)
    if not run.planned_steps():
        print(f"tlsfast bench: error: nothing can run with {settings.tls.label()}: "
              + "; ".join(f"{what}: {why}" for what, why in run.unavailable.items()), file=sys.stderr)
        return EXIT_UNAVAILABLE
    progress = _Progress(run.planned_steps(), args.quiet)
    run.progress = progress
    status, interrupted = 0, False
    start = time.monotonic()
    try:
        run.run()
    except KeyboardInterrupt:
        interrupted, status = True, EXIT_INTERRUPTED
    except BenchError as e:
        progress.stop()
        print(f"tlsfast bench: error: {e}", file=sys.stderr)
        status = e.status
    finally:
        stop_children()
        progress.stop()
    elapsed = time.monotonic() - start
    results = [r for r in run.results if r.samples]
    if status and not interrupted and not results:
        return status
    try:
        hints = noise.mark(results, pinned=settings.server_core is not None and settings.client_core is not None)
        _show(results, settings, argv, interrupted, elapsed, run.unavailable, hints)
        if args.json:
            report.write_json(args.json, report.document(results, settings, argv, interrupted, elapsed,
                                                         run.unavailable, hints))
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(report.markdown(results))
        if args.csv:
            report.write_csv(args.csv, results, settings.tls.to_json())
        if args.plot and results:
            report.plot(results, args.plot, subtitle=f"{settings.tls.label()}; "
                                                     f"tlsfast bench {' '.join(argv)}")
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as e:
        print(f"tlsfast bench: error: cannot write output: {e}", file=sys.stderr)
        return status or EXIT_FAILED
    return status




def _need_matplotlib(option: str) -> None:
    try:
        import matplotlib  # noqa: F401 - imported only to learn whether it is installed
    except ImportError:
        raise Unavailable(f"{option} needs matplotlib (pip install 'tlsfast[plot]')") from None


def _load(path: str):
    from tlsfast.bench import report

    try:
        return report.load(path)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _compare_parser() -> OneLineParser:
    from tlsfast.bench import compare

    parser = OneLineParser(prog="tlsfast bench compare", description=compare.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", metavar="A.json", help="the reference run (tlsfast bench --json)")
    parser.add_argument("after", metavar="B.json", help="the run to compare with it")
    return parser


def _compare(options: argparse.Namespace) -> int:
    """``tlsfast bench compare A.json B.json``."""
    from rich.console import Console

    from tlsfast.bench import compare, report

    doc_a, results_a = _load(options.before)
    doc_b, results_b = _load(options.after)
    rows = compare.compare(results_a, results_b)
    if not rows:
        raise UsageError(f"{options.before} and {options.after} have no scenario and stack in common")
    console = Console() if sys.stdout.isatty() else Console(width=170)
    console.print(f"A: {options.before} ({' '.join(doc_a.get('command', []))})\n"
                  f"B: {options.after} ({' '.join(doc_b.get('command', []))})", highlight=False)
    for section in ("tls", "environment"):
        changed = [name for name in compare.differences(doc_a.get(section, {}), doc_b.get(section, {}))
                   if name not in ("loadavg",)]
        if changed:
            console.print(f"[bold]note[/]: A and B differ in {section}: {', '.join(changed)}", highlight=False)
    console.print(report.comparison_table(rows))
    return 0


def _plot_parser() -> OneLineParser:
    parser = OneLineParser(prog="tlsfast bench plot", description="Draw a saved run (tlsfast bench --json) again.")
    parser.add_argument("document", metavar="A.json", help="a run saved with tlsfast bench --json")
    parser.add_argument("-o", "--output", metavar="FILE.png", help="where to draw it (default: A.png)")
    return parser


def _plot(options: argparse.Namespace) -> int:
    """``tlsfast bench plot A.json``: draw a saved run again."""
    from tlsfast.bench import report

    _need_matplotlib("tlsfast bench plot")
    doc, results = _load(options.document)
    output = options.output or os.path.splitext(options.document)[0] + ".png"
    results = [result for result in results if result.samples]
    if not results:
        raise UsageError(f"{options.document} holds no measurements")
    tls = doc.get("tls")
    label = f"TLS {tls['version']} {tls['cipher']} / {tls['group']} / {tls['key_type']}" if tls else \
        f"{doc['settings'].get('cipher')} / {doc['settings'].get('group')}"
    report.plot(results, output, subtitle=f"{label}; {' '.join(doc.get('command', []))}")
    print(f"wrote {output}")
    return 0


def _proxy_parser() -> OneLineParser:
    from tlsfast.bench import proxy

    return proxy.parser()


def _proxy(options: argparse.Namespace) -> int:
    """``tlsfast bench proxy``: the proxy comparison (tlsfast.bench.proxy)."""
    from tlsfast.bench import proxy

    return proxy.run(options)


def _breakdown_parser() -> OneLineParser:
    from tlsfast.bench import breakdown

    return breakdown.parser()


def _breakdown(options: argparse.Namespace) -> int:
    """``tlsfast bench breakdown``: per-connection cost by phase (tlsfast.bench.breakdown)."""
    from tlsfast.bench import breakdown

    return breakdown.run(options)


def _churn_parser() -> OneLineParser:
    from tlsfast.bench import churn

    return churn.parser()


def _churn(options: argparse.Namespace) -> int:
    """``tlsfast bench churn``: RSS over many short connections (tlsfast.bench.churn)."""
    from tlsfast.bench import churn

    return churn.run(options)


# tlsfast bench ACTION ...: (its parser, what it does with the parsed options)
ACTIONS: dict[str, tuple[Callable[[], OneLineParser], Callable[[argparse.Namespace], int]]] = {
    "compare": (_compare_parser, _compare),
    "plot": (_plot_parser, _plot),
    "proxy": (_proxy_parser, _proxy),
    "breakdown": (_breakdown_parser, _breakdown),
    "churn": (_churn_parser, _churn),
}


def parse(argv: list[str]) -> argparse.Namespace:
    """``tlsfast bench``'s arguments: an action's, or a run's (``action`` None).
    Exits as argparse does on --help (status 0) and bad arguments (2)."""
    if argv and argv[0] in ACTIONS:
        options = ACTIONS[argv[0]][0]().parse_args(argv[1:])
        options.action = argv[0]
    else:
        options = _run_parser().parse_args(argv)
        options.action = None
    options.argv = argv
    return options


class _ParseBench(argparse.Action):
    """Takes ``bench``'s arguments verbatim and parses them at once, so that
    --help and bad arguments are answered while ``tlsfast`` parses, as for the
    other subcommands."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        namespace.bench = parse(list(values))


def add_parser(commands) -> None:
    """
    Register ``bench`` with the ``tlsfast`` subcommands.

    The entry takes every argument verbatim (no prefix characters, so
    ``--quick`` is an ordinary word to it) and :func:`parse` reads them:
    ``bench`` has actions of its own (``compare``, ``plot``, ``proxy``) next to
    its optional list of scenarios, which one argparse parser cannot express.
    """
    entry = commands.add_parser("bench", help=SUMMARY, add_help=False, prefix_chars="\0")
    entry.add_argument("bench_argv", nargs="*", action=_ParseBench)
    entry.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Do what ``tlsfast bench``'s arguments (parsed by :func:`add_parser`'s entry) ask."""
    options = args.bench
    if options.action is None:
        return _bench(options)
    try:
        return ACTIONS[options.action][1](options)
    except CommandError as e:
        print(f"tlsfast bench {options.action}: error: {e}", file=sys.stderr)
        return e.status
    except OSError as e:
        print(f"tlsfast bench {options.action}: error: cannot write output: {e}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """``tlsfast bench ARGS``, without the other subcommands."""
    return run(argparse.Namespace(bench=parse(sys.argv[1:] if argv is None else list(argv))))
