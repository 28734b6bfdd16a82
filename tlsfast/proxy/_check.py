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
from typing import Any

from tlsfast.proxy._config import ProxyConfig, ProxyConfigError, deprecationNote, parseConfig, parseListener
from tlsfast.proxy._status import EXIT_CONFIG, EXIT_OK


def configurationProblems(process: dict[str, Any], listeners: list[dict[str, Any]],
                          warned: list[str]) -> tuple[ProxyConfig | None, list[str]]:
    """
    The configuration these settings give (L{None} if they give none) and
    every problem in them: L{parseConfig} stops at the first, so each
    listener is also parsed on its own, and the TLS settings of those that
    pass are built as the proxy builds them (files read, keys matched
    against their certificates, CA files parsed).  What the TLS layer
    warns of (an expired certificate, say: served all the same) and
    deprecated settings are added to C{warned}.
    """
    from tlsfast.options import ConfigurationError
    from tlsfast.proxy._relay import ListenerTLS

    problems: list[str] = []
    config = None
    try:
        config = parseConfig(process, listeners)
    except ProxyConfigError as e:
        problems.append(str(e))
    for index, settings in enumerate(listeners):
        try:
            listener = parseListener(settings, index, process.get("keylog"))
        except ProxyConfigError as e:
            if str(e) not in problems:
                problems.append(str(e))
            continue
        note = deprecationNote(listener)
        if note is not None:
            warned.append(f"listener {listener.name}: {note}")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ListenerTLS(listener, None)  # no reactor: nothing runs, timeouts are only stored
            warned += [f"listener {listener.name}: {warning.message}" for warning in caught]
        except ConfigurationError as e:
            problems.append(f"listener {listener.name}: {e}")
    return config, problems


def check(args: argparse.Namespace,
          settingsFromArgs: Callable[[argparse.Namespace], tuple[dict[str, Any], list[dict[str, Any]]]]) -> int:
    """
    Report every problem of the configuration that C{settingsFromArgs}
    (passed in by the CLI, which this module does not import) reads from C{args}.
    """
    from tlsfast.proxy._privileges import resolveIdentity

    warned: list[str] = []
    config = None
    try:
        process, listeners = settingsFromArgs(args)
    except ProxyConfigError as e:
        problems = [str(e)]
    else:
        config, problems = configurationProblems(process, listeners, warned)
        if process.get("user") is not None or process.get("group") is not None:
            try:
                resolveIdentity(process.get("user"), process.get("group"), needRoot=False)
            except ProxyConfigError as e:
                problems.append(str(e))
    for warning in warned:
        print(f"tlsfast proxy: warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"tlsfast proxy: error: {problem}", file=sys.stderr)
    if problems or config is None:
        return EXIT_CONFIG
    names = ", ".join(listener.name for listener in config.listeners)
    print(f"tlsfast proxy: configuration OK ({len(config.listeners)} listener(s): {names})")
    return EXIT_OK
