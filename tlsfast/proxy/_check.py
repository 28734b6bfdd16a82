"""
``tlsfast proxy --check``: everything the proxy would check before
serving, without binding a socket (like ``haproxy -c`` or ``nginx -t``):
the configuration, every certificate, key and CA file loaded as the proxy
loads them (a key that does not match its certificate, a CA file without a
CA), backend names resolved, the C{--user}/C{--group} names.  One line per
problem on stderr and exit status 2, or one OK line on stdout and 0.
"""

from __future__ import annotations

import argparse
import sys
import time

from tlsfast.proxy._config import ProxyConfig, ProxyConfigError

EXIT_OK, EXIT_CONFIG = 0, 2


def configurationProblems(config: ProxyConfig) -> list[str]:
    """
    Every problem L{ProxyConfig.check} finds.  It stops at the first, so
    once it has, each listener is checked on its own for more.
    """
    try:
        config.check()
        return []
    except ProxyConfigError as e:
        problems = [str(e)]
    for index, listener in enumerate(config.listeners):
        listener.name = listener.name or f"l{index}"
        try:
            listener.check()
        except ProxyConfigError as e:
            if str(e) not in problems:
                problems.append(str(e))
    return problems


def tlsProblems(config: ProxyConfig) -> list[str]:
    """Each listener's TLS settings, built as the proxy builds them (files read, keys matched)."""
    from tlsfast.options import ConfigurationError
    from tlsfast.proxy._relay import ListenerTLS

    problems = []
    for listener in config.listeners:
        try:
            ListenerTLS(listener, None)  # no reactor: nothing runs, timeouts are only stored
        except ConfigurationError as e:
            problems.append(f"listener {listener.name}: {e}")
    return problems


def expiryWarnings(config: ProxyConfig, now: float) -> list[str]:
    """Certificates already expired: served all the same, but worth a line."""
    from tlsfast.proxy._certificates import expiryTimestamps

    warnings = []
    for listener in config.listeners:
        for path, expiry in expiryTimestamps(listener).items():
            if expiry < now:
                day = time.strftime("%Y-%m-%d", time.gmtime(expiry))
                warnings.append(f"listener {listener.name}: certificate {path!r} expired on {day}")
    return warnings


def check(args: argparse.Namespace) -> int:
    from tlsfast.proxy._main import uncheckedConfigFromArgs
    from tlsfast.proxy._privileges import resolveIdentity

    try:
        config = uncheckedConfigFromArgs(args)
    except ProxyConfigError as e:
        problems = [str(e)]
    else:
        problems = configurationProblems(config)
        if not problems:
            problems = tlsProblems(config)
        if config.user is not None or config.group is not None:
            try:
                resolveIdentity(config.user, config.group)
            except ProxyConfigError as e:
                problems.append(str(e))
    for problem in problems:
        print(f"tlsfast proxy: error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    for warning in expiryWarnings(config, time.time()):
        print(f"tlsfast proxy: warning: {warning}", file=sys.stderr)
    names = ", ".join(listener.name for listener in config.listeners)
    print(f"tlsfast proxy: configuration OK ({len(config.listeners)} listener(s): {names})")
    return EXIT_OK
