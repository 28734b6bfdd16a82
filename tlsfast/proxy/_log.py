"""
Structured log lines, one per event, so C{grep conn=17} follows one
connection: logfmt (C{time level event key=value ...}, the default) or JSON
(one object per line, the same fields).

Values come from peers (an SNI, an error text) and must not be able to
forge a line or drive a terminal: every character that is not printable
(C0, DEL, C1, Unicode format characters, separators other than the space)
and every byte that is not UTF-8 is written as a visible escape -- C{\\r}, C{\\x1b}, C{\\u202e}.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time

_NEEDS_QUOTES = re.compile(r'[ "=\\]|^$')
# Characters a value cannot hold unquoted and unescaped (NUL apart: it
# separates the values _logfmtPairs renders in one pass).
_SPECIAL = r' "=\\\x01-\x1f\x7f-\U0010ffff'
_PLAIN = re.compile(rf'[^\x00{_SPECIAL}]+\Z')  # printable ASCII, nothing to quote: the usual value
# One value of a NUL-separated list that L{_value} would change: empty, or
# holding a character that is not plain.
_NOT_PLAIN_VALUE = re.compile(rf'(?<![^\x00])(?=[^\x00]*[{_SPECIAL}]|\x00|\Z)[^\x00]*')
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def safeText(value: object) -> str:
    """
    C{value} as text with every unsafe character escaped (a backslash
    before an escape is doubled only in logfmt's quoting, see L{_value}).
    Bytes are read as UTF-8; bytes that are not are shown as C{\\xNN}.
    """
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    # Python's "printable" is what may go raw: not the Unicode categories
    # Other (controls, format, surrogates, private use, unassigned) or
    # Separator, ASCII space excepted.
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _value(value: object) -> str:
    """A logfmt value: quoted (backslash and quote escaped) when it needs to be."""
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    if _PLAIN.match(text) or (text.isprintable() and not _NEEDS_QUOTES.search(text)):
        return text
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + safeText(text) + '"'


def _logfmtPairs(present: list[tuple[str, object]]) -> list[str]:
    """
    C{key=value} for each field, each value as L{_value} writes it.  Most
    values are plain (printable ASCII, nothing to quote): one regex pass over
    all of them, NUL-separated, hands only the others (on a close line
    usually one, C{error=}) to L{_value}, instead of a L{_value} call per
    field (13 on a close line).
    """
    texts = [value.decode("utf-8", "surrogateescape") if type(value) is bytes else str(value)
             for _, value in present]
    joined = "\x00".join(texts)
    if joined.count("\x00") != len(texts) - 1:  # a value holds a NUL itself: one at a time
        return [f"{key}={_value(text)}" for (key, _), text in zip(present, texts, strict=True)]
    rendered = _NOT_PLAIN_VALUE.sub(_renderMatch, joined).split("\x00") if texts else []
    return [f"{key}={text}" for (key, _), text in zip(present, rendered, strict=True)]


def _renderMatch(match: re.Match[str]) -> str:
    return _value(match.group())


def _jsonValue(value: object) -> object:
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return safeText(value)


LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}


class Logger:
    """
    Writes logfmt (or JSON) lines at or above C{level} to a text stream (stderr by
    default).  C{debugEnabled} lets hot paths skip building a line nobody
    will see.
    """

    def __init__(self, stream=None, fields: dict | None = None, level: str = "info", format: str = "logfmt"):
        self.stream = stream if stream is not None else sys.stderr
        self.fields = dict(fields or {})  # on every line (e.g. worker=N)
        self.setFormat(format)
        self.threshold = LEVELS[level]
        self.debugEnabled = self.threshold <= LEVELS["debug"]
        self._second: int | None = None
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

    def setFormat(self, format: str) -> None:
        """C{logfmt} or C{json} (from the configuration, known after the logger is made)."""
        if format not in ("logfmt", "json"):
            raise ValueError(f"unknown log format {format!r}")
        self.format = format

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
        stamp = f"{self._stamp}.{int(now % 1 * 1000):03d}Z"
        if self.format == "json":
            record: dict[str, object] = {"time": stamp, "level": level, "event": event}
            record.update((key, _jsonValue(value)) for key, value in self.fields.items())
            record.update((key, _jsonValue(value)) for key, value in fields.items() if value is not None)
            # ensure_ascii: the line is ASCII whatever the values hold
            line = json.dumps(record, ensure_ascii=True, separators=(",", ":"))
        else:
            parts = [stamp, f"level={level}", f"event={event}"]
            parts += _logfmtPairs([*self.fields.items(),
                                   *[(key, value) for key, value in fields.items() if value is not None]])
            line = " ".join(parts)
        try:
            self.stream.write(line + "\n")
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
