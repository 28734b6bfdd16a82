"""
Helpers for the hardening tests: a TLS client that sends any SNI bytes
(pyOpenSSL: CPython's ssl refuses what is not a valid IDNA name), a strict
parser of the proxy's logfmt lines, and checks that a log holds no
traceback.  Every wait is bounded by helpers.TIMEOUT.
"""

from __future__ import annotations

import re
import select
import socket
import time

from OpenSSL import SSL

from tests.proxy.helpers import TIMEOUT

_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^ "=\\]+)(?: |$)')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def parseLogfmt(line: str) -> dict[str, str]:
    """
    The fields of one of the proxy's logfmt lines (after its timestamp);
    AssertionError unless the whole line is well-formed logfmt of printable
    ASCII (the escaping's promise: nothing raw a terminal would act on).
    """
    assert line.isprintable(), repr(line)
    stamp, _, rest = line.partition(" ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), line
    fields, position = {}, 0
    while position < len(rest):
        match = _PAIR.match(rest, position)
        assert match, f"not logfmt at {position}: {line!r}"
        key, value = match.groups()
        if value.startswith('"'):
            value = re.sub(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)",
                           lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), value[1:-1])
        fields[key] = value
        position = match.end()
    return fields


def assertNoTraceback(lines: list[str]) -> None:
    """No line carries a traceback, nor is an error Twisted caught (an exception escaping a callback)."""
    for line in lines:
        assert "traceback=" not in line and "Traceback" not in line, line
        assert "event=twisted" not in line or "level=error" not in line, line


def tlsClient(port: int, serverName: bytes | None = b"example.com", alpn: list[bytes] | None = None,
              handshake: bool = True) -> SSL.Connection:
    """
    A TLS connection to 127.0.0.1:C{port} sending C{serverName} as its SNI,
    byte for byte; certificates are not verified (these tests are about
    what the proxy does with the name).  Raises L{SSL.Error} if the
    handshake fails.
    """
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if alpn:
        context.set_alpn_protos(alpn)
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    connection = SSL.Connection(context, sock)
    if serverName is not None:
        connection.set_tlsext_host_name(serverName)
    connection.set_connect_state()
    if handshake:
        bounded(connection.do_handshake)
    return connection


def bounded(call, *args):
    """
    C{call(*args)} on a pyOpenSSL connection over a socket with a timeout
    (so non-blocking underneath): retried when the socket is ready, for at
    most TIMEOUT seconds.
    """
    connection = call.__self__
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return call(*args)
        except SSL.WantReadError:
            wait = ([connection], [])
        except SSL.WantWriteError:
            wait = ([], [connection])
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not any(select.select(*wait, [], remaining)):
            raise TimeoutError(f"{call.__name__} did not complete in {TIMEOUT} s")


def roundTrip(connection: SSL.Connection, data: bytes) -> bytes:
    """Send C{data} and read as many bytes back (through an echo backend)."""
    bounded(connection.sendall, data)
    received = b""
    while len(received) < len(data):
        received += bounded(connection.recv, 65536)
    return received


def close(connection: SSL.Connection) -> None:
    """close_notify, then close the socket (without waiting for the proxy's reply)."""
    try:
        connection.shutdown()
    except SSL.Error:
        pass
    connection.close()  # the socket under it


def readAll(connection: SSL.Connection) -> bytes:
    """Everything until the proxy's close_notify (or the connection's end)."""
    chunks = []
    while True:
        try:
            chunk = bounded(connection.recv, 65536)
        except (SSL.ZeroReturnError, SSL.SysCallError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
