"""
Phases of a connection's life, and a ``sys.setprofile`` hook that charges
every call and its CPU time to one (:mod:`tlsfast.bench.breakdown` runs it).

A call is charged to the phase of the innermost function on the stack that
:data:`RULES` names (the file it is defined in, its qualified name), so a
handshake driven from inside ``Port.doRead`` counts as handshake, and what
those functions call inherits their phase.  Time outside every named
function (the reactor loop, socket reads and writes, dispatch) is
``reactor/other``: the phases add up to the profiled total by construction.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from tlsfast._foreign.profilenames import PHASE_RULES

PHASES = ("accept/connect", "setup", "handshake+records", "callbacks", "close", "reactor/other")
OTHER = "reactor/other"

# (file the function is defined in, ending with; qualified name) -> phase.
# Python functions are matched by file and co_qualname, C functions by module
# and __qualname__ (the file column then holds the module).
RULES: dict[tuple[str, str], str] = {
    # accept (server side) and connect (client side, proxy -> backend)
    ("proxy/_relay.py", "Listener.buildProtocol"): "accept/connect",
    ("proxy/_relay.py", "Frontend._dial"): "accept/connect",
    ("proxy/_relay.py", "_BackendFactory.buildProtocol"): "accept/connect",
    ("proxy/_relay.py", "Backend.connectionMade"): "accept/connect",
    # the SSL object, its BIOs, the engine and the TLS protocol around them
    ("options/_server.py", "ServerOptions.serverConnectionForTLS"): "setup",
    ("options/_client.py", "ClientOptions.clientConnectionForTLS"): "setup",
    ("proxy/_relay.py", "_CurrentServerOptions.serverConnectionForTLS"): "setup",
    # the handshake and the TLS record paths
    ("tlsfast._engine", "TLSEngine.do_handshake"): "handshake+records",
    # Python called back: OpenSSL's info/ALPN/SNI/verify callbacks, the
    # application's (and the proxy relay's) protocol methods
    ("options/_monitor.py", "Monitor._infoCallback"): "callbacks",
    ("options/_monitor.py", "_countRecord"): "callbacks",
    ("bench/server.py", "_twisted_server.<locals>.Echo.connectionMade"): "callbacks",
    ("bench/server.py", "_twisted_server.<locals>.Echo.dataReceived"): "callbacks",
    ("bench/handshake_client.py", "_OneByte.connectionMade"): "callbacks",
    ("bench/handshake_client.py", "_OneByte.dataReceived"): "callbacks",
    ("proxy/_relay.py", "Frontend.connectionMade"): "callbacks",
    ("proxy/_relay.py", "Frontend.dataReceived"): "callbacks",
    ("proxy/_relay.py", "Backend.dataReceived"): "callbacks",
    ("proxy/_relay.py", "TLSFrontend.handshakeCompleted"): "callbacks",
    # teardown
    ("tlsfast._engine", "TLSEngine.shutdown"): "close",
    ("proxy/_relay.py", "Frontend.connectionLost"): "close",
    ("proxy/_relay.py", "Backend.connectionLost"): "close",
    ("proxy/_relay.py", "Frontend._finish"): "close",
    ("proxy/_relay.py", "_Side._close"): "close",
    ("bench/handshake_client.py", "_OneByte.connectionLost"): "close",
    # Twisted's, pyOpenSSL's and the seam's functions (their names are private)
    **PHASE_RULES,
}


def _pythonKey(code) -> tuple[str, str]:
    return code.co_filename.replace(os.sep, "/"), code.co_qualname


def ruleFor(filename: str, qualname: str) -> str | None:
    """The phase :data:`RULES` names for a function, or None."""
    for (where, name), phase in RULES.items():
        if name == qualname and filename.endswith(where):
            return phase
    return None


class PhaseProfiler:
    """A ``sys.setprofile`` hook: calls and CPU seconds per phase (see the
    module docstring for the attribution)."""

    def __init__(self, clock: Callable[[], float] = time.process_time):
        self.clock = clock
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.calls = dict.fromkeys(PHASES, 0)
        self._stack: list[str] = []
        self._phase = OTHER
        self.functions: dict[tuple[str, str], int] = {}  # (phase, function) -> calls
        self._codes: dict[Any, tuple[str | None, str]] = {}
        self._last = 0.0

    def _phaseOf(self, frame, event: str, arg) -> tuple[str, str]:
        """(phase, function name) of a call."""
        if event == "call":
            code = frame.f_code
            try:
                named, function = self._codes[code]
            except KeyError:
                filename, qualname = _pythonKey(code)
                function = f"{'/'.join(filename.rsplit('/', 2)[-2:])}:{qualname}"
                named, function = self._codes[code] = ruleFor(filename, qualname), function
        else:
            # a C method's module is its owner's (the engine's methods have none of their own)
            owner = getattr(arg, "__self__", None)
            module = getattr(arg, "__module__", None) or (type(owner).__module__ if owner is not None else "")
            qualname = getattr(arg, "__qualname__", "?")
            named, function = ruleFor(module, qualname), f"{module}:{qualname}"
        return named or self._phase, function

    def _event(self, frame, event: str, arg) -> None:
        now = self.clock()
        self.seconds[self._phase] += now - self._last
        if event in ("call", "c_call"):
            phase, function = self._phaseOf(frame, event, arg)
            self.calls[phase] += 1
            key = (phase, function)
            self.functions[key] = self.functions.get(key, 0) + 1
            self._stack.append(self._phase)
            self._phase = phase
        elif self._stack:  # return, c_return, c_exception
            self._phase = self._stack.pop()
        else:  # leaving a frame entered before the profiler started: the reactor's
            self._phase = OTHER
        self._last = self.clock()

    def start(self) -> None:
        self._last = self.clock()
        sys.setprofile(self._event)

    def stop(self) -> None:
        sys.setprofile(None)
        self.seconds[self._phase] += self.clock() - self._last
