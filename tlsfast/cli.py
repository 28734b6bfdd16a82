"""The ``tlsfast`` command line: ``tlsfast info``, ``tlsfast bench``, ``tlsfast proxy``."""

from __future__ import annotations

import argparse
import os
import sys

from tlsfast._cliutil import EXIT_FAILED
from tlsfast._cliutil import OneLineParser as _Parser


def _info(args: argparse.Namespace) -> int:
    import tlsfast

    info = tlsfast.backend_info()
    for line in info.lines():
        print(line)
    return 0 if info.accelerated or not args.strict else 1


def _add_bench(commands) -> None:
    from tlsfast.bench.cli import addParser

    addParser(commands)


# ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _Parser(prog="tlsfast", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    info = commands.add_parser("info", help="versions and whether acceleration is active")
    info.add_argument("--strict", action="store_true",
                      help="exit 1 when acceleration is not active")
    info.set_defaults(run=_info)
    _add_bench(commands)
    from tlsfast.proxy import addParser as _add_proxy

    _add_proxy(commands)
    args = parser.parse_args(argv)
    args.argv = argv[1:]
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `tlsfast bench | head`: the reader left, not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
