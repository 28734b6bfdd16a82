"""
Structured log lines (logfmt): C{time level event key=value ...}, one line
per event, so C{grep conn=17} follows one connection.
"""

from __future__ import annotations

import sys
import time


def _value(value) -> str:
    text = value.decode("ascii", "backslashreplace") if isinstance(value, bytes) else str(value)
    if text == "" or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class Logger:
    """Writes logfmt lines to a text stream (stderr by default)."""

    def __init__(self, stream=None, fields: dict | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.fields = dict(fields or {})  # on every line (e.g. worker=N)

    def __call__(self, level: str, event: str, **fields) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        parts = [stamp, f"level={level}", f"event={event}"]
        parts += [f"{key}={_value(value)}" for key, value in self.fields.items()]
        parts += [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
        try:
            self.stream.write(" ".join(parts) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # stderr gone: keep relaying
            pass
