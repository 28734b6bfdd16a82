"""
The types of configuration values: what each key accepts, and one check
that turns a value of the wrong type or out of range into one
L{ProxyConfigError} naming where it is, the key, what was expected and what
was found -- instead of a C{TypeError} at the first comparison.

The tables themselves (key -> L{Kind}) sit next to the dataclasses in
L{tlsfast.proxy._config}; a new setting is one line there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeGuard


class ProxyConfigError(ValueError):
    """A configuration mistake; the message says what and where."""


@dataclass(frozen=True)
class Kind:
    """What one configuration key accepts: C{expected} reads as 'must be ...'."""

    expected: str
    accepts: Callable[[object], bool]


def _isInteger(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not 1


def _isNumber(value: object) -> TypeGuard[float]:
    return (_isInteger(value) or isinstance(value, float)) and math.isfinite(value)


def _isText(value: object) -> bool:
    return isinstance(value, str)


def integer(minimum: int) -> Kind:
    return Kind(f"an integer >= {minimum}", lambda v: _isInteger(v) and v >= minimum)


def seconds(positive: bool = True) -> Kind:
    if positive:
        return Kind("a number of seconds > 0", lambda v: _isNumber(v) and v > 0)
    return Kind("a number of seconds >= 0", lambda v: _isNumber(v) and v >= 0)


TEXT = Kind("a string", _isText)
NAME = Kind("a name (a non-empty string)", lambda v: _isText(v) and v != "")
BOOLEAN = Kind("true or false", lambda v: isinstance(v, bool))


def choice(options: Iterable[str]) -> Kind:
    options = tuple(options)
    return Kind("one of " + ", ".join(repr(o) for o in options), lambda v: v in options and _isText(v))


def _textList(value: object) -> bool:
    return _isText(value) or (isinstance(value, list | tuple) and all(_isText(item) for item in value))


TEXT_LIST = Kind("a list of strings (or one comma-separated string)", _textList)


def table(valueKind: Kind) -> Kind:
    """A TOML table (any mapping: a parsed configuration holds read-only ones) of names to C{valueKind}."""
    return Kind(f"a table of names to {valueKind.expected}",
                lambda v: isinstance(v, Mapping) and all(_isText(k) and valueKind.accepts(x) for k, x in v.items()))


FILES = Kind("a file, or [certificate, key]",
             lambda v: _isText(v) or (isinstance(v, list | tuple) and 1 <= len(v) <= 2 and all(map(_isText, v))))


def _typeName(value: object) -> str:
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
                       (list, "an array"), (dict, "a table")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def checkTypes(values: Mapping[str, object], kinds: Mapping[str, Kind], where: str) -> None:
    """
    Raise L{ProxyConfigError} for the first key of C{values} that is
    unknown or whose value C{kinds} does not accept.  L{None} means 'not
    set' (a dataclass default) and is not checked.
    """
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        raise ProxyConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key, value in values.items():
        kind = kinds[key]
        if value is not None and not kind.accepts(value):
            raise ProxyConfigError(f"{where}: {key} must be {kind.expected}, not {value!r} ({_typeName(value)})")
