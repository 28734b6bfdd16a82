"""
Exit statuses of C{tlsfast proxy} (its C{--help} and docs/proxy.md give
them): the CLI-wide ones of L{tlsfast._cliutil}, named for what they mean
here, in one place for the supervisor, the worker and C{--check}.
"""

from tlsfast._cliutil import EXIT_UNAVAILABLE, EXIT_USAGE

EXIT_OK = 0
EXIT_CONFIG = EXIT_USAGE  # a bad configuration (flags, TOML, certificates)
EXIT_LISTEN = EXIT_UNAVAILABLE  # a listen or metrics address cannot be bound
