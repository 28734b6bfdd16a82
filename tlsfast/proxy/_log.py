"""
Structured log lines (logfmt): C{time level event key=value ...}, one line
per event, so C{grep conn=17} follows one connection.
"""

from __future__ import annotations

import re
import sys
import time


_NEEDS_QUOTES = re.compile(r'[ "=\n]|^$')


def _value(value) -> str:
    text = value.decode("ascii", "backslashreplace") if isinstance(value, bytes) else str(value)
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}


class Logger:
    """
    Writes logfmt lines at or above C{level} to a text stream (stderr by
    default).  C{debugEnabled} lets hot paths skip building a line nobody
    will see.
    """

    def __init__(self, stream=None, fields: dict | None = None, level: str = "info"):
        self.stream = stream if stream is not None else sys.stderr
        self.fields = dict(fields or {})  # on every line (e.g. worker=N)
        self.threshold = LEVELS[level]
        self.debugEnabled = self.threshold <= LEVELS["debug"]
        self._second = None
        self._stamp = ""
        self._callLater = None
        self._flushPending = False

    def flushEachTurn(self, reactor) -> None:
        """
        Flush once per reactor turn instead of once per line: a busy proxy
        writes the lines of many connections with one system call, and no
        line waits longer than the turn that logged it.  C{None}: back to
        flushing every line (once the reactor has stopped).
        """
        self._callLater = reactor.callLater if reactor is not None else None
        if reactor is None:
            self.flush()

    def flush(self) -> None:
        self._flushPending = False
        try:
            self.stream.flush()
        except (OSError, ValueError):  # stderr gone: keep relaying
            pass

    def __call__(self, level: str, event: str, **fields) -> None:
        if LEVELS[level] < self.threshold:
            return
        now = time.time()
        second = int(now)
        if second != self._second:  # strftime once per second, not per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        parts = [f"{self._stamp}.{int(now % 1 * 1000):03d}Z", f"level={level}", f"event={event}"]
        parts += [f"{key}={_value(value)}" for key, value in self.fields.items()]
        parts += [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
        try:
            self.stream.write(" ".join(parts) + "\n")
        except (OSError, ValueError):  # stderr gone: keep relaying
            return
        if self._callLater is None:
            self.flush()
        elif not self._flushPending:
            self._flushPending = True
            self._callLater(0, self.flush)


def twistedObserver(log: Logger):
    """
    A L{twisted.logger} observer passing Twisted's warnings and errors (an
    exception that escaped a callback, an unhandled error in a Deferred) to
    C{log} as C{event=twisted} lines, traceback included.  Twisted's
    informational chatter stays out.
    """
    from twisted.logger import LogLevel, formatEvent

    def observe(event: dict) -> None:
        level = event.get("log_level")
        failure = event.get("log_failure")
        if failure is None and (level is None or level < LogLevel.warn):
            return
        fields = {"message": formatEvent(event) or None, "system": event.get("log_system")}
        if failure is not None:
            fields["error"] = f"{failure.type.__name__}: {failure.getErrorMessage()}"
            fields["traceback"] = failure.getTraceback()
        log("error" if failure is not None or level >= LogLevel.error else "warn", "twisted", **fields)

    return observe
