"""
Server names (SNI) compared the way DNS compares them: one normal form for
configured names and for what clients send, and one lookup (exact name,
then a one-label C{*.} wildcard) shared by L{ServerOptions}' certificate
selection and the proxy's SNI routes.

The normal form is the name's A-label (IDNA, UTS 46 mapping: C{Bücher.example}
and C{xn--bcher-kva.example} are the same name), lowercase, without the
trailing root dot.  ASCII names are only lowercased and checked for shape:
DNS names in the wild have underscores (C{_acme.example}) that IDNA refuses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import ModuleType
from typing import Generic, TypeVar

_idna: ModuleType | None
try:  # IDNA 2008 with UTS 46 mapping, as browsers; else Python's IDNA 2003 codec
    import idna as _idna
except ImportError:  # pragma: no cover - idna comes with Twisted (hyperlink)
    _idna = None

_Value = TypeVar("_Value")

_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_ASCII_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")
_MAX_LENGTH = 253  # RFC 1035, without the root dot


class InvalidServerName(ValueError):
    """Not a DNS host name (empty label, label over 63 bytes, a space, bad IDNA...)."""


def _text(name: str | bytes) -> str:
    """
    The name as text.  Bytes are what the client sent: UTF-8 or refused.  Text
    with lone surrogates (bytes decoded with C{surrogateescape}, as
    L{ConnectionInfo.serverName} is) is turned back into those bytes first.
    """
    if isinstance(name, str):
        if name.isascii():
            return name
        try:
            name = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise InvalidServerName(f"server name {name!r}: not a host name") from None
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidServerName(f"server name {name!r}: not UTF-8") from None


def normalizeServerName(name: str | bytes) -> str:
    """
    The normal form of a host name (see the module docstring); raises
    L{InvalidServerName} for anything that is not one.
    """
    text = _text(name)
    text = text.removesuffix(".")
    if not text.isascii():
        try:
            if _idna is not None:
                text = _idna.encode(text, uts46=True).decode("ascii")
            else:
                text = text.lower().encode("idna").decode("ascii")
        except (UnicodeError, ValueError) as e:  # idna.IDNAError is a UnicodeError
            raise InvalidServerName(f"server name {text!r}: invalid international name ({e})") from None
    text = text.lower()
    if len(text) > _MAX_LENGTH or not _ASCII_NAME.match(text):
        raise InvalidServerName(f"server name {text!r}: not a host name (labels of 1-63 letters, "
                                "digits, '-' or '_', separated by dots)")
    return text


def normalizePattern(pattern: str) -> str:
    """A configured name, or C{*.} and a name (a wildcard for one label), in normal form."""
    pattern = pattern.strip()
    if pattern.startswith("*."):
        return "*." + normalizeServerName(pattern[2:])
    if "*" in pattern:
        raise InvalidServerName(f"server name {pattern!r}: only a leading '*.' wildcard is supported")
    return normalizeServerName(pattern)


def serverNameKey(name: str | bytes | None) -> str | None:
    """A client's SNI in normal form, or L{None} when it sent none or not a host name."""
    if not name:
        return None
    try:
        return normalizeServerName(name)
    except InvalidServerName:
        return None


class ServerNameMap(Generic[_Value]):
    """
    Values by server name: C{"name"} or C{"*.domain"} patterns (normalised
    when built: L{InvalidServerName} for a bad one), looked up with what a
    client sent.
    """

    def __init__(self, entries: Mapping[str, _Value] | None = None) -> None:
        self.exact: dict[str, _Value] = {}
        self.wildcards: dict[str, _Value] = {}  # "domain" for "*.domain"
        for pattern, value in (entries or {}).items():
            normal = normalizePattern(pattern)
            if normal.startswith("*."):
                self.wildcards[normal[2:]] = value
            else:
                self.exact[normal] = value

    def __bool__(self) -> bool:
        return bool(self.exact or self.wildcards)

    def values(self) -> list[_Value]:
        return [*self.exact.values(), *self.wildcards.values()]

    def lookup(self, serverName: str | bytes | None) -> _Value | None:
        """The value for a client's SNI: its exact name, else the wildcard one label up."""
        key = serverNameKey(serverName)
        if key is None:
            return None
        value = self.exact.get(key)
        if value is None and "." in key:
            value = self.wildcards.get(key.split(".", 1)[1])
        return value
