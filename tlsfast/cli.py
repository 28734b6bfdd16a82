"""The ``tlsfast`` command line."""

from __future__ import annotations

import argparse
import sys


def _info(args: argparse.Namespace) -> int:
    import tlsfast

    info = tlsfast.backend_info()
    for line in info.lines():
        print(line)
    return 0 if info.accelerated or not args.strict else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlsfast", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions and whether acceleration is active")
    info.add_argument("--strict", action="store_true",
                      help="exit 1 when acceleration is not active")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
