"""
How many TLS 1.3 session tickets a server context sends per handshake, and
the keys it encrypts them with.

OpenSSL sends two NewSessionTicket messages after every full TLS 1.3
handshake (one after a resumption) unless C{SSL_CTX_set_num_tickets} says
otherwise, and it sends them even when the server could never resume them
(no ticket key, no session cache).  Neither pyOpenSSL nor cryptography's
cffi library exposes that function (nor C{SSL_CTX_ctrl}, which sets the
ticket keys), but the OpenSSL statically linked into
cryptography's extension keeps it as a local symbol in the module's ELF
symbol table.  We find it there and call it only after three checks:

  1. the module was loaded from the file whose symbol table we read, at the
     base address C{dladdr} reports, and that table places one of cffi's own
     wrappers (C{_cffi_d_SSL_CTX_new}) exactly where cffi says it is;
  2. a fresh context reports OpenSSL's documented default of 2 tickets;
  3. setting 1 on it succeeds and reads back 1, and random ticket keys set
     through C{SSL_CTX_ctrl} read back the same.

Anything else (another platform, a stripped build, a different OpenSSL)
leaves L{ticketControl} L{None} with the reason in L{unavailableReason}:
never a call through an unchecked pointer.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from tlsfast._foreign import Surface, pyopenssl
from tlsfast._foreign.cryptobinding import ffi
from tlsfast._foreign.pyopenssl import contextPointer
from tlsfast._versions import TESTED_RANGES

OPENSSL_DEFAULT_TICKETS = 2  # SSL_CTX_set_num_tickets(3): "the default value is 2"
TICKET_KEYS_LENGTH = 80  # key name 16 + HMAC secret 32 + AES key 32 (SSL_CTX_set_tlsext_ticket_keys)

_GETTER, _SETTER, _ANCHOR = "SSL_CTX_get_num_tickets", "SSL_CTX_set_num_tickets", "_cffi_d_SSL_CTX_new"
_SSL_GETTER, _SSL_SETTER = "SSL_get_num_tickets", "SSL_set_num_tickets"  # one connection's (copied from its context)
_CTRL = "SSL_CTX_ctrl"  # SSL_CTX_{get,set}_tlsext_ticket_keys are macros over it
_GET_TICKET_KEYS, _SET_TICKET_KEYS = 58, 59  # SSL_CTRL_{GET,SET}_TLSEXT_TICKET_KEYS
_SHT_SYMTAB, _STT_FUNC = 2, 2


class TicketControlUnavailable(Exception):
    """The running cryptography build does not let us set the count."""


@dataclass(frozen=True)
class TicketControl:
    """C{SSL_CTX_get/set_num_tickets} of cryptography's OpenSSL."""

    get: Callable[[Any], int]
    set: Callable[[Any, int], int]
    ctrl: Callable[[Any, int, int, Any], int]
    getForConnection: Callable[[Any], int]
    setForConnection: Callable[[Any, int], int]

    def count(self, context) -> int:
        """The number of TLS 1.3 tickets a pyOpenSSL C{Context} sends."""
        return int(self.get(contextPointer(context)))

    def setCount(self, context, count: int) -> None:
        """Make a pyOpenSSL C{Context} send C{count} TLS 1.3 tickets."""
        if self.set(contextPointer(context), count) != 1:
            raise TicketControlUnavailable(f"SSL_CTX_set_num_tickets({count}) failed")

    def connectionCount(self, connection) -> int:
        """The number of TLS 1.3 tickets a pyOpenSSL C{Connection} sends
        (its context's count when it was made, unless set since)."""
        return int(self.getForConnection(pyopenssl.sslPointer(connection)))

    def setConnectionCount(self, connection, count: int) -> None:
        """Make a pyOpenSSL C{Connection} send C{count} TLS 1.3 tickets."""
        if self.setForConnection(pyopenssl.sslPointer(connection), count) != 1:
            raise TicketControlUnavailable(f"SSL_set_num_tickets({count}) failed")

    def ticketKeys(self, context) -> bytes:
        """The key material a pyOpenSSL C{Context} encrypts tickets with."""
        buffer = ffi.new("unsigned char[]", TICKET_KEYS_LENGTH)
        if self.ctrl(contextPointer(context), _GET_TICKET_KEYS, TICKET_KEYS_LENGTH, buffer) != 1:
            raise TicketControlUnavailable("SSL_CTX_get_tlsext_ticket_keys failed")
        return bytes(ffi.buffer(buffer))

    def setTicketKeys(self, context, keys: bytes) -> None:
        """Make a pyOpenSSL C{Context} encrypt and decrypt tickets with
        C{keys} (L{TICKET_KEYS_LENGTH} bytes), so that contexts in other
        processes given the same keys resume its tickets."""
        if len(keys) != TICKET_KEYS_LENGTH:
            raise ValueError(f"ticket keys are {TICKET_KEYS_LENGTH} bytes, not {len(keys)}")
        buffer = ffi.new("unsigned char[]", keys)
        if self.ctrl(contextPointer(context), _SET_TICKET_KEYS, TICKET_KEYS_LENGTH, buffer) != 1:
            raise TicketControlUnavailable("SSL_CTX_set_tlsext_ticket_keys failed")


def _localFunctions(path: str, wanted: set[str]) -> dict[str, int]:
    """The symbol-table values (offsets from the load base) of the
    functions named C{wanted} in the ELF64 little-endian file C{path}."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:6] != b"\x7fELF\x02\x01":
            raise TicketControlUnavailable(f"{path} is not a 64-bit little-endian ELF file")
        (sectionsAt,) = struct.unpack_from("<Q", data, 0x28)
        entrySize, count = struct.unpack_from("<HH", data, 0x3A)
        # (sh_type, sh_offset, sh_size, sh_link, sh_entsize) per section
        sections = [(fields[1], fields[4], fields[5], fields[6], fields[9]) for fields in (
            struct.unpack_from("<IIQQQQIIQQ", data, sectionsAt + i * entrySize) for i in range(count))]
        found: dict[str, int] = {}
        for kind, offset, size, link, symbolSize in sections:
            if kind != _SHT_SYMTAB or not symbolSize:
                continue
            names = sections[link][1]
            for at in range(offset, offset + size, symbolSize):
                nameAt, info, _, _, value, _ = struct.unpack_from("<IBBHQQ", data, at)
                if info & 0xF != _STT_FUNC:
                    continue
                start = names + nameAt
                name = data[start:data.find(b"\0", start)].decode("ascii", "replace")
                if name in wanted:
                    found[name] = value
        return found


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _locate() -> TicketControl:
    if not sys.platform.startswith("linux"):
        raise TicketControlUnavailable(f"only looked up on Linux, not {sys.platform}")
    from OpenSSL import SSL

    from tlsfast._foreign.cryptobinding import lib

    anchor = int(ffi.cast("uintptr_t", ffi.addressof(lib, "SSL_CTX_new")))
    info = _DlInfo()
    if not ctypes.CDLL(None).dladdr(ctypes.c_void_p(anchor), ctypes.byref(info)) or not info.dli_fname:
        raise TicketControlUnavailable("dladdr does not know cryptography's OpenSSL")
    path = os.fsdecode(info.dli_fname)
    wanted = {_GETTER, _SETTER, _CTRL, _ANCHOR, _SSL_GETTER, _SSL_SETTER}
    symbols = _localFunctions(path, wanted)
    missing = sorted(wanted - symbols.keys())
    if missing:
        raise TicketControlUnavailable(f"{os.path.basename(path)} has no symbol {', '.join(missing)}")
    base = info.dli_fbase or 0
    if base + symbols[_ANCHOR] != anchor:
        raise TicketControlUnavailable(f"the symbol table of {path} does not match the loaded module")
    control = TicketControl(
        ffi.cast("size_t(*)(SSL_CTX *)", base + symbols[_GETTER]),
        ffi.cast("int(*)(SSL_CTX *, size_t)", base + symbols[_SETTER]),
        ffi.cast("long(*)(SSL_CTX *, int, long, void *)", base + symbols[_CTRL]),
        ffi.cast("size_t(*)(const SSL *)", base + symbols[_SSL_GETTER]),
        ffi.cast("int(*)(SSL *, size_t)", base + symbols[_SSL_SETTER]))
    probe = SSL.Context(SSL.TLS_METHOD)
    if control.count(probe) != OPENSSL_DEFAULT_TICKETS:
        raise TicketControlUnavailable(f"{_GETTER} does not report OpenSSL's default")
    control.setCount(probe, 1)
    if control.count(probe) != 1:
        raise TicketControlUnavailable(f"{_SETTER} did not take effect")
    connection = SSL.Connection(probe, None)
    if control.connectionCount(connection) != 1:
        raise TicketControlUnavailable(f"{_SSL_GETTER} does not report its context's count")
    control.setConnectionCount(connection, 3)
    if control.connectionCount(connection) != 3 or control.count(probe) != 1:
        raise TicketControlUnavailable(f"{_SSL_SETTER} did not take effect on the connection alone")
    keys = os.urandom(TICKET_KEYS_LENGTH)
    control.setTicketKeys(probe, keys)
    if control.ticketKeys(probe) != keys:
        raise TicketControlUnavailable("the ticket keys set do not read back")
    return control


# Contexts already seen by withoutUnresumableTickets (whatever it decided).
_seen: weakref.WeakSet[Any] = weakref.WeakSet()


def withoutUnresumableTickets(connection) -> None:
    """
    Make C{connection}, and the later connections of its context, send no
    TLS 1.3 session ticket when the context could not resume one: stateful
    tickets (C{OP_NO_TICKET}, as Twisted's C{CertificateOptions} sets by
    default) with the server session cache off.  OpenSSL sends its 2
    regardless, together about 26 µs of server CPU per full handshake
    (docs/compatibility.md) and a session the client cannot use.  Contexts that can resume, and counts set
    explicitly (anything but OpenSSL's default), are left alone; each
    context is looked at once, on its first connection.
    """
    context = connection.get_context()
    if context in _seen:
        return
    _seen.add(context)
    control = ticketControl()
    if control is None or control.count(context) != OPENSSL_DEFAULT_TICKETS:
        return
    from OpenSSL import SSL

    from tlsfast._foreign.cryptobinding import lib

    stateful = lib.SSL_CTX_get_options(contextPointer(context)) & SSL.OP_NO_TICKET
    if stateful and not context.get_session_cache_mode() & SSL.SESS_CACHE_SERVER:
        control.setCount(context, 0)
        control.setConnectionCount(connection, 0)  # made before the context's count changed


@cache
def _lookup() -> tuple[TicketControl | None, str | None]:
    try:
        return _locate(), None
    except (TicketControlUnavailable, NotImplementedError, OSError, ValueError, struct.error,
            AttributeError) as e:
        return None, str(e)


def ticketControl() -> TicketControl | None:
    """The ticket-count control, or L{None} where it cannot be had safely
    (also while the seam cannot reach a Context's C{SSL_CTX*})."""
    return _lookup()[0] if pyopenssl.SURFACE.usable else None


def unavailableReason() -> str | None:
    """Why L{ticketControl} is L{None} (L{None} when it is available)."""
    if not pyopenssl.SURFACE.usable:
        return "; ".join(pyopenssl.SURFACE.problems)
    return _lookup()[1]


def check() -> Surface:
    """What the lookup found, as a seam surface (for C{tlsfast info})."""
    reason = unavailableReason()
    return Surface("TLS 1.3 ticket controls (local symbols of cryptography's OpenSSL)", "cryptography",
                   TESTED_RANGES["cryptography"]).require([reason] if reason else [])


def __getattr__(name: str) -> Surface:
    # SURFACE is computed on first use: the lookup reads a 14 MB symbol table (~20 ms).
    if name == "SURFACE":
        return check()
    raise AttributeError(name)
