"""
Helpers for the proxy tests: PEM files, the proxy as a subprocess (its log
lines collected, its port read from the ``listening`` line), and backends and
clients on threads with the stdlib (socket, ssl).  Everything is on
127.0.0.1 and every wait is bounded by TIMEOUT.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from tests import pki

# Upper bound for any one wait; only reached when something hangs.
TIMEOUT = 20.0


@dataclass(frozen=True)
class PEMs:
    ca: str
    cert: str  # example.com, for the proxy's listener
    key: str
    backendCert: str  # backend.example, for TLS backends
    backendKey: str
    otherKey: str  # a key that matches neither certificate


def writePEMs(directory) -> PEMs:
    server = pki.leaf("ecdsa", names=("example.com",))
    backend = pki.leaf("ecdsa", names=("backend.example",))
    other = pki.leaf("ecdsa", names=("other.example",))
    files = {"ca": pki.certificate_authority().cert_pem, "cert": server.cert_pem, "key": server.key_pem,
             "backendCert": backend.cert_pem, "backendKey": backend.key_pem, "otherKey": other.key_pem}
    paths = pki.write_pems(directory, files)
    return PEMs(**paths)


class Proxy:
    """``python -m tlsfast proxy ARGS`` with its stderr collected line by line."""

    def __init__(self, args):
        if "--log-level" not in args:
            # The tests follow connections through their per-event lines.
            args = ["--log-level", "debug", *args]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tlsfast", "proxy", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ports: dict[str, int] = {}

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def waitFor(self, pattern: str, count: int = 1) -> list[str]:
        """The log lines matching C{pattern} once there are C{count} of them."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            found = [line for line in list(self.lines) if re.search(pattern, line)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline or (self.process.poll() is not None and not self._reader.is_alive()):
                raise AssertionError(f"no {count} log line(s) matching {pattern!r}; log:\n" + "\n".join(self.lines))
            time.sleep(0.01)

    def waitListening(self, listeners: int = 1) -> Proxy:
        for line in self.waitFor(r"event=listening", listeners):
            name = re.search(r"listener=(\S+)", line).group(1)
            self.ports[name] = int(re.search(r"address=\S+:(\d+)", line).group(1))
        return self

    @property
    def port(self) -> int:
        return self.ports["l0"]

    def rssBytes(self) -> int:
        with open(f"/proc/{self.process.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> int:
        try:
            status = self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        return status

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.wait()


def runProxy(args) -> subprocess.CompletedProcess:
    """Run the proxy to completion (for configuration errors)."""
    return subprocess.run([sys.executable, "-m", "tlsfast", "proxy", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)


class Backend:
    """
    A threaded TCP server on 127.0.0.1: C{handler(sock)} runs per
    connection on its own thread (after the TLS handshake when C{context} is
    given).  C{accepted} counts TCP connections.
    """

    def __init__(self, handler, context: ssl.SSLContext | None = None):
        self.handler = handler
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.alpn: list[str | None] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock):
        sock.settimeout(TIMEOUT)
        try:
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_side=True)
                self.alpn.append(sock.selected_alpn_protocol())
            self.handler(sock)
        except (OSError, ssl.SSLError) as e:
            self.errors.append(e)
        finally:
            sock.close()

    def close(self):
        self._stop.set()
        self._accepter.join(TIMEOUT)
        self.listener.close()
        for thread in self._threads:
            thread.join(TIMEOUT)


def echo(sock):
    while data := sock.recv(65536):
        sock.sendall(data)


def serverContext(certfile, keyfile, alpn=None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def clientContext(cafile, alpn=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def connect(port, context: ssl.SSLContext | None = None, name="example.com"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if context is not None:
        # suppress_ragged_eofs=False: a close without close_notify raises
        # instead of looking like a clean end.
        sock = context.wrap_socket(sock, server_hostname=name, suppress_ragged_eofs=False)
    return sock


def echoRoundTrip(sock, size: int, window: int = 256 * 1024) -> tuple[str, str]:
    """
    Send C{size} random bytes and read the echo, at most C{window} bytes
    outstanding (one thread: an ssl socket must not be used from two);
    both sha256 digests.
    """
    payload = os.urandom(size)
    received = hashlib.sha256()
    sent = count = 0
    while count < size:
        if sent < size and sent - count < window:
            piece = payload[sent:sent + 65536]
            sock.sendall(piece)
            sent += len(piece)
            continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        received.update(chunk)
        count += len(chunk)
    return hashlib.sha256(payload).hexdigest(), received.hexdigest()


def readToEnd(sock) -> bytes:
    """Everything until the peer's clean close (TLS: close_notify)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
