"""The ``tlsfast`` command line: ``tlsfast info``, ``tlsfast bench``, ``tlsfast proxy``."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from tlsfast._cliutil import EXIT_FAILED, EXIT_USAGE
from tlsfast._cliutil import OneLineParser as _Parser
from tlsfast._version import __version__

#: What a subcommand needs beyond the core dependencies: the extra that brings
#: it (pyproject.toml) and the modules that extra provides, which the
#: subcommand imports only once it runs.
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bench": ("bench", ("rich",)),
    "proxy": ("proxy", ("prometheus_client", "proxyprotocol")),
}


def _info(args: argparse.Namespace) -> int:
    import tlsfast
    from tlsfast._foreign import surfaces
    from tlsfast.twisted import unavailableReasons

    info = tlsfast.backend_info()
    for line in info.lines():
        print(line)
    for surface in surfaces():
        print(f"surface        {surface.name}: " + ("ok" if surface.usable else "; ".join(surface.problems)))
    return 0 if not unavailableReasons() or not args.strict else 1


def _add_bench(commands) -> None:
    from tlsfast.bench.cli import add_parser

    add_parser(commands)


# ---------------------------------------------------------------------------

def missing_extra(command: str) -> str | None:
    """
    The line telling what to install when ``command``'s extra is missing, or None.

    Checked with ``find_spec``, which imports nothing, before the subcommand
    imports those modules: so a core-only install gets this one line, not a
    traceback.
    """
    extra, modules = EXTRAS.get(command, ("", ()))
    if any(importlib.util.find_spec(module) is None for module in modules):
        return f"tlsfast {command} needs the {extra} extra: pip install 'tlsfast[{extra}]'"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _Parser(prog="tlsfast", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tlsfast {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    info = commands.add_parser("info", help="versions and whether acceleration is active")
    info.add_argument("--strict", action="store_true",
                      help="exit 1 when install() would leave Twisted stock (engine or Twisted TLS surface unusable)")
    info.set_defaults(run=_info)
    _add_bench(commands)
    from tlsfast.proxy import addParser as _add_proxy

    _add_proxy(commands)
    args = parser.parse_args(argv)
    args.argv = argv[1:]
    missing = missing_extra(args.command)
    if missing:
        print(missing, file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `tlsfast bench | head`: the reader left, not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
