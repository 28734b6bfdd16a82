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
import warnings
from collections.abc import Callable

from tlsfast.proxy._config import ProxyConfig, ProxyConfigError
from tlsfast.proxy._status import EXIT_CONFIG, EXIT_OK


def configurationProblems(config: ProxyConfig, warned: list[str]) -> list[str]:
    """
    Every problem in C{config}: L{ProxyConfig.check} stops at the first,
    so each listener is also checked on its own, and the TLS settings of
    those that pass are built as the proxy builds them (files read, keys
    matched against their certificates, CA files parsed).  What the TLS
    layer warns of (an expired certificate, say: served all the same) is
    added to C{warned}.
    """
    from tlsfast.options import ConfigurationError
    from tlsfast.proxy._relay import ListenerTLS

    problems: list[str] = []
    try:
        config.check()
    except ProxyConfigError as e:
        problems.append(str(e))
    for index, listener in enumerate(config.listeners):
        listener.name = listener.name or f"l{index}"
        try:
            listener.check()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ListenerTLS(listener, None)  # no reactor: nothing runs, timeouts are only stored
            warned += [f"listener {listener.name}: {warning.message}" for warning in caught]
        except ProxyConfigError as e:
            if str(e) not in problems:
                problems.append(str(e))
        except ConfigurationError as e:
            problems.append(f"listener {listener.name}: {e}")
    return problems


def check(args: argparse.Namespace, uncheckedConfigFromArgs: Callable[[argparse.Namespace], ProxyConfig]) -> int:
    """
    Report every problem of the configuration that C{uncheckedConfigFromArgs}
    (passed in by the CLI, which this module does not import) builds from C{args}.
    """
    from tlsfast.proxy._privileges import resolveIdentity

    warned: list[str] = []
    try:
        config = uncheckedConfigFromArgs(args)
    except ProxyConfigError as e:
        problems = [str(e)]
    else:
        problems = configurationProblems(config, warned)
        if config.user is not None or config.group is not None:
            try:
                resolveIdentity(config.user, config.group, needRoot=False)
            except ProxyConfigError as e:
                problems.append(str(e))
    for warning in warned:
        print(f"tlsfast proxy: warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"tlsfast proxy: error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    names = ", ".join(listener.name for listener in config.listeners)
    print(f"tlsfast proxy: configuration OK ({len(config.listeners)} listener(s): {names})")
    return EXIT_OK
