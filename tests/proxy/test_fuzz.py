"""
A bounded fuzz run against one proxy (accept_proxy, PROXY v2 to the backend,
SNI routes and certificates): random PROXY headers, mutated ClientHellos and
random SNI bytes, 300 connections, seeded (FUZZ_SEED to replay).  The proxy
must stay up, log no traceback, write only well-formed lines, and relay a
good connection correctly the whole time.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time

from OpenSSL import SSL

from tests import pki
from tests.proxy.faulthelpers import clientHello
from tests.proxy.helpers import TIMEOUT, clientContext, echoRoundTrip
from tests.proxy.hostile import assertNoTraceback, bounded, parseLogfmt, roundTrip
from tests.proxy.test_accept_proxy import V1, tlsAfter
from tlsfast.proxy._proxyheader import ClientTLS, headerV2

CONNECTIONS = 300
SEED = int(os.environ.get("FUZZ_SEED", "20261207"))
SIGNATURE_V2 = b"\r\n\r\n\x00\r\nQUIT\n"
ODD_NAMES = [b"a..b", b"x" * 64 + b".example", "bücher.example".encode(), b"a\r\nlevel=error",
             b"\x1b[2J.example", b".", b"-", b"*.example", b"r.example.", b"R.EXAMPLE", b"x.example\x7f"]


def stripHeaderThenEcho(sock) -> None:
    """A backend behind --proxy-protocol v2: drop the header, echo the rest."""
    data = b""
    while len(data) < 16 or len(data) < 16 + int.from_bytes(data[14:16], "big"):
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk
    sock.sendall(data[16 + int.from_bytes(data[14:16], "big"):])
    while chunk := sock.recv(65536):
        sock.sendall(chunk)


def randomProxyHeader(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # a v2 header with random fields and a random block
        body = rng.randbytes(rng.randrange(0, 80))
        length = len(body) if rng.random() < 0.7 else rng.randrange(0, 0x10000)
        return SIGNATURE_V2 + bytes([rng.randrange(256), rng.randrange(256)]) + length.to_bytes(2, "big") + body
    if kind == 1:  # a valid v2 header, then mutated
        header = bytearray(headerV2(("192.0.2.1", 1), ("192.0.2.2", 2), ClientTLS(serverName=rng.randbytes(8).hex())))
        for _ in range(rng.randrange(1, 4)):
            header[rng.randrange(12, len(header))] = rng.randrange(256)
        return bytes(header)
    if kind == 2:  # a v1 line of random words
        words = [rng.choice([b"TCP4", b"TCP6", b"UNKNOWN", b"1.2.3.4", b"::1", b"99999", b"-1", rng.randbytes(4)])
                 for _ in range(rng.randrange(0, 7))]
        return b"PROXY " + b" ".join(words) + rng.choice([b"\r\n", b"\n", b""])
    if kind == 3:  # a prefix of a signature, then noise
        signature = rng.choice([SIGNATURE_V2, b"PROXY "])
        return signature[:rng.randrange(1, len(signature))] + rng.randbytes(rng.randrange(0, 20))
    return rng.randbytes(rng.randrange(1, 200))


def mutatedHello(rng: random.Random, hello: bytes) -> bytes:
    data = bytearray(hello)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randrange(1, 12)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        data = data[:rng.randrange(1, len(data))]
    elif kind == 2:  # lengths that lie: record, handshake, extensions
        position = rng.choice([3, 6, 7, 8, rng.randrange(9, len(data) - 1)])
        data[position:position + 2] = rng.randbytes(2)
    else:
        position = rng.randrange(len(data))
        data[position:position] = rng.randbytes(rng.randrange(1, 64))
    return bytes(data)


def randomServerName(rng: random.Random) -> bytes:
    if rng.random() < 0.4:
        return rng.choice(ODD_NAMES)
    return bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 256)))  # no NUL: OpenSSL refuses it


def sendAndLeave(port: int, data: bytes, rng: random.Random) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(data)
            if rng.random() < 0.3:  # sometimes wait for the proxy's reaction
                sock.settimeout(0.2)
                sock.recv(65536)
        except OSError:  # reset, or the timeout above
            pass


def sniConnection(port: int, name: bytes) -> bool:
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.sendall(V1)
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    connection = SSL.Connection(context, raw)
    connection.set_tlsext_host_name(name)
    connection.set_connect_state()
    try:
        bounded(connection.do_handshake)
        return roundTrip(connection, b"ping") == b"ping"
    except (SSL.Error, OSError):
        return False
    finally:
        raw.close()


class GoodTraffic(threading.Thread):
    """Echo round trips through the proxy, one after another, until stopped."""

    def __init__(self, port: int, context) -> None:
        super().__init__(daemon=True)
        self.port, self.context = port, context
        self.done = 0
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with tlsAfter(V1, self.port, self.context) as sock:
                    sent, received = echoRoundTrip(sock, 64 * 1024)
                    assert received == sent, "echo differs"
                self.done += 1
            except Exception as e:  # noqa: BLE001 - recorded, the test fails on it
                self.errors.append(f"{type(e).__name__}: {e}")


def test_fuzz(pems, start_proxy, backend, tmp_path):
    wildcard = pki.leaf("ecdsa", names=("*.example",))
    files = pki.write_pems(str(tmp_path), {"w.crt": wildcard.cert_pem, "w.key": wildcard.key_pem})
    server = backend(stripHeaderThenEcho)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--accept-proxy", "--proxy-protocol", "v2",
                        "--route", f"r.example=127.0.0.1:{server.port}",
                        "--sni-cert", f"*.example={files['w.crt']},{files['w.key']}",
                        "--handshake-timeout", "2", "--alpn", "http/1.1")
    good = GoodTraffic(proxy.port, clientContext(pems.ca))
    good.start()
    rng = random.Random(SEED)
    hello = clientHello("r.example")
    relayed = sniAttempts = 0
    started = time.monotonic()
    try:
        for _ in range(CONNECTIONS):
            kind = rng.randrange(3)
            if kind == 0:
                sendAndLeave(proxy.port, randomProxyHeader(rng), rng)
            elif kind == 1:
                sendAndLeave(proxy.port, V1 + mutatedHello(rng, hello), rng)
            else:
                sniAttempts += 1
                relayed += sniConnection(proxy.port, randomServerName(rng))
            assert proxy.process.poll() is None, f"the proxy died (FUZZ_SEED={SEED})"
    finally:
        good.stopping.set()
        good.join(TIMEOUT)
    elapsed = time.monotonic() - started
    assert good.errors == [] and good.done >= 3, (good.errors, good.done)
    assert relayed >= sniAttempts // 2, (relayed, sniAttempts)  # the SNI fuzz reached the relay
    # Once every fuzz connection has ended, one more good one still works.
    with tlsAfter(V1, proxy.port, clientContext(pems.ca)) as sock:
        sock.sendall(b"after")
        assert sock.recv(5) == b"after"
    assert proxy.terminate() == 0
    assertNoTraceback(proxy.lines)
    events = [parseLogfmt(line)["event"] for line in proxy.lines]  # every line well-formed
    assert events.count("close") >= CONNECTIONS // 2
    assert any(" event=close " in line and "by=proxy_header_failed" in line for line in proxy.lines)
    assert any(" event=close " in line and "by=handshake_failed" in line for line in proxy.lines)
    assert elapsed < 60, f"{elapsed:.1f} s"
