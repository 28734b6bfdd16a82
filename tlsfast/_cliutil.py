"""
What every ``tlsfast`` subcommand shares: exit statuses, the two error types
that map to them and an argparse parser that reports bad arguments in one
line.  Its own module so that :mod:`tlsfast.cli` and the subcommands it
delegates to (:mod:`tlsfast.bench.cli`) both import it without a cycle.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 1, 2, 3, 130


class CommandError(Exception):
    """A subcommand cannot go on: one line on stderr, and its exit status."""

    status = EXIT_FAILED


class UsageError(CommandError):
    """Bad arguments: exit status 2."""

    status = EXIT_USAGE


class Unavailable(CommandError):
    """Cannot run here (port in use, stack not installed, ...): exit status 3."""

    status = EXIT_UNAVAILABLE


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line on stderr (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")
