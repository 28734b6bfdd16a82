"""
Load generators and plain-TCP backends for ``tlsfast bench proxy``
(:mod:`tlsfast.bench.proxy`, which starts this file by path).

Every contender (tlsfast proxy, stock Twisted TLS, haproxy, stunnel, hitch) gets the
same processes from here, pinned by the caller to the other CPU:

    backend               plain TCP: a discard port, an echo port, a control
                          port (``stats`` -> JSON counters); prints its ports
    client bulk           N TLS connections (threads), 256 KiB writes
    client rr             N TLS connections, 64-byte request -> 64-byte echo,
                          per-request latency (1 connection: blocking loop;
                          more: one selector loop)
    client handshake      C concurrent full handshakes (no session reuse) in a
                          selector loop (pyOpenSSL by default, see there);
                          each = TCP connect, TLS 1.3 handshake,
                          1 byte to the echo backend and back, close
    client idle           open N connections (handshake + 1-byte echo), report,
                          hold them until a line arrives on stdin

Timed clients print ``MARK start`` when the measured window starts and
``MARK end`` when it ends (the caller samples the proxy's CPU, the backend's
counters and its own clock at each mark), then one JSON line ``RESULT {...}``.
The suite and group come from ``OPENSSL_CONF`` (written per run by
:func:`tlsfast.bench.tlsconfig.write_openssl_conf`) in the environment; the client also refuses anything below TLS 1.3.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import selectors
import socket
import ssl
import sys
import threading
import time

KiB = 1024


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def cpu_self() -> float:
    t = os.times()
    return t.user + t.system


# ---------------------------------------------------------------- backend

def backend(args) -> int:
    sel = selectors.DefaultSelector()
    stats = {"discard_bytes": 0, "echo_bytes": 0, "echo_accepts": 0, "discard_accepts": 0}
    buf = bytearray(1 << 20)
    view = memoryview(buf)

    def listen():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(4096)
        s.setblocking(False)
        return s

    discard, echo, control = listen(), listen(), listen()
    pending: dict[socket.socket, bytearray] = {}

    def on_accept(lsock, kind):
        while True:
            try:
                c, _ = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and friends: report and go on
                sys.stderr.write(f"backend accept: {e}\n")
                return
            c.setblocking(False)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if kind == "discard":
                stats["discard_accepts"] += 1
            elif kind == "echo":
                stats["echo_accepts"] += 1
            sel.register(c, selectors.EVENT_READ, kind)

    def close(c):
        sel.unregister(c)
        pending.pop(c, None)
        c.close()

    def receive(c, limit: int) -> int | None:
        """recv_into the shared buffer: the count read, or None when there is
        nothing to read now or the peer has gone (then ``c`` is closed)."""
        try:
            n = c.recv_into(view, limit)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            n = 0
        if not n:
            close(c)
            return None
        return n

    def on_discard(c):
        while True:
            n = receive(c, len(buf))
            if n is None:
                return
            stats["discard_bytes"] += n
            if n < len(buf):
                return

    def on_echo(c, mask):
        if mask & selectors.EVENT_WRITE:
            data = pending[c]
            try:
                sent = c.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                close(c)
                return
            del data[:sent]
            if not data:
                del pending[c]
                sel.modify(c, selectors.EVENT_READ, "echo")
            return
        n = receive(c, 65536)
        if n is None:
            return
        stats["echo_bytes"] += n
        if c in pending:
            pending[c] += view[:n]
            return
        try:
            sent = c.send(view[:n])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            close(c)
            return
        if sent < n:
            pending[c] = bytearray(view[sent:n])
            sel.modify(c, selectors.EVENT_READ | selectors.EVENT_WRITE, "echo")

    def on_control(c):
        try:
            data = c.recv(100)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            close(c)
            return
        reply = dict(stats, cpu=cpu_self(), time=time.monotonic())
        c.setblocking(True)
        c.sendall(json.dumps(reply).encode() + b"\n")
        c.setblocking(False)

    for s, kind in ((discard, "discard-listen"), (echo, "echo-listen"), (control, "control-listen")):
        sel.register(s, selectors.EVENT_READ, kind)
    out(f"PORTS {discard.getsockname()[1]} {echo.getsockname()[1]} {control.getsockname()[1]}")
    while True:
        for key, mask in sel.select():
            kind, s = key.data, key.fileobj
            if kind.endswith("-listen"):
                on_accept(s, kind[:-7])
            elif kind == "discard":
                on_discard(s)
            elif kind == "echo":
                on_echo(s, mask)
            else:
                on_control(s)


# ---------------------------------------------------------------- clients

def context(args) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if args.ca and not args.no_verify:
        ctx.load_verify_locations(args.ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(ctx, args) -> ssl.SSLSocket:
    raw = socket.create_connection((args.host, args.port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname=args.sni)


def info(s: ssl.SSLSocket) -> dict:
    cipher = s.cipher()
    return {"version": s.version(), "cipher": cipher[0] if cipher else None}


def client_bulk(args) -> int:
    ctx = context(args)
    socks = [connect(ctx, args) for _ in range(args.connections)]
    negotiated = info(socks[0])
    chunk = os.urandom(args.chunk)
    stop = threading.Event()
    sent = [0] * len(socks)
    errors: list[str] = []

    def pump(i, s):
        try:
            while not stop.is_set():
                s.sendall(chunk)
                sent[i] += len(chunk)
        except OSError as e:
            if not stop.is_set():
                errors.append(repr(e))

    threads = [threading.Thread(target=pump, args=(i, s), daemon=True) for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    time.sleep(args.warmup)
    c0, s0 = cpu_self(), sum(sent)
    out("MARK start")
    time.sleep(args.seconds)
    out("MARK end")
    c1, s1 = cpu_self(), sum(sent)
    stop.set()
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    for t in threads:
        t.join(2)
    out("RESULT " + json.dumps({"client_sent": s1 - s0, "client_cpu": c1 - c0, "errors": errors[:5],
                                **negotiated}))
    return 0


def _percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def client_rr(args) -> int:
    ctx = context(args)
    socks = [connect(ctx, args) for _ in range(args.connections)]
    size = args.size
    request = b"x" * size
    lat: list[int] = []
    now = time.perf_counter_ns
    t_start = time.monotonic() + args.warmup
    t_end = t_start + args.seconds
    marked = False
    c0 = 0.0

    if len(socks) == 1:
        s = socks[0]
        while True:
            t = time.monotonic()
            if t >= t_end:
                break
            if not marked and t >= t_start:
                marked, c0 = True, cpu_self()
                out("MARK start")
            t0 = now()
            s.sendall(request)
            got = 0
            while got < size:
                data = s.recv(65536)
                if not data:
                    raise SystemExit("rr: connection closed by the proxy")
                got += len(data)
            if marked:
                lat.append(now() - t0)
    else:
        sel = selectors.DefaultSelector()
        state = {}
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            s.send(request)
            state[s] = [now(), 0]
        running = True
        while running:
            t = time.monotonic()
            if not marked and t >= t_start:
                marked, c0 = True, cpu_self()
                out("MARK start")
            if t >= t_end:
                break
            for key, _ in sel.select(1.0):
                s = key.fileobj  # type: ignore[assignment]  # registered SSLSockets only
                st = state[s]
                while True:
                    try:
                        data = s.recv(65536)
                    except ssl.SSLWantReadError:
                        break
                    if not data:
                        raise SystemExit("rr: connection closed by the proxy")
                    st[1] += len(data)
                    if st[1] >= size:
                        t1 = now()
                        if marked:
                            lat.append(t1 - st[0])
                        st[0], st[1] = t1, st[1] - size
                        while True:
                            try:
                                s.send(request)
                                break
                            except ssl.SSLWantWriteError:
                                time.sleep(0)
    out("MARK end")
    c1 = cpu_self()
    negotiated = info(socks[0])
    lat.sort()
    result = {"requests": len(lat), "client_cpu": c1 - c0 if marked else None,
              "p50_us": _percentile(lat, 0.50) / 1e3 if lat else None,
              "p99_us": _percentile(lat, 0.99) / 1e3 if lat else None,
              "p999_us": _percentile(lat, 0.999) / 1e3 if lat else None,
              "max_us": lat[-1] / 1e3 if lat else None, **negotiated}
    for s in socks:
        s.close()
    out("RESULT " + json.dumps(result))
    return 0


class _Conn:
    __slots__ = ("sock", "tls", "phase")


def client_handshake(args) -> int:
    """C concurrent connect + handshake + 1-byte echo + close, in one selector loop.

    ``--lib pyopenssl`` (default) drives pyOpenSSL, i.e. cryptography's
    bundled OpenSSL, whose client handshake costs about half the CPU of the
    system OpenSSL 3.0 behind stdlib ssl: the load generator shares one core
    with the backend and must outrun the proxy.
    """
    use_pyo = args.lib == "pyopenssl"
    if use_pyo:
        from OpenSSL import SSL
        pctx = SSL.Context(SSL.TLS_METHOD)
        pctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        WantRead, WantWrite, TLSError = SSL.WantReadError, SSL.WantWriteError, SSL.Error
        sni = args.sni.encode()
    else:
        ctx = context(args)
        WantRead, WantWrite, TLSError = ssl.SSLWantReadError, ssl.SSLWantWriteError, ssl.SSLError  # type: ignore[assignment]  # stdlib stands in
    sel = selectors.DefaultSelector()
    addr = (args.host, args.port)
    done = 0
    errors: dict[str, int] = {}
    first_info: dict = {}

    def start():
        c = _Conn()
        s = socket.socket()
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = s.connect_ex(addr)
        c.sock, c.tls, c.phase = s, None, "connect"
        if err not in (0, errno.EINPROGRESS):
            s.close()
            why = f"connect:{errno.errorcode.get(err, err)}"
            errors[why] = errors.get(why, 0) + 1
            return
        sel.register(s, selectors.EVENT_WRITE, c)

    def finish(c):
        sel.unregister(c.sock)
        if use_pyo and c.tls is not None:
            c.sock.close()
        else:
            (c.tls or c.sock).close()

    def fail(c, why):
        errors[why] = errors.get(why, 0) + 1
        finish(c)
        start()

    def step(c):
        nonlocal done
        if c.phase == "connect":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return fail(c, f"connect:{errno.errorcode.get(err, err)}")
            if use_pyo:
                c.tls = SSL.Connection(pctx, c.sock)
                c.tls.set_tlsext_host_name(sni)
                c.tls.set_connect_state()
            else:
                sel.unregister(c.sock)
                c.tls = ctx.wrap_socket(c.sock, server_hostname=args.sni, do_handshake_on_connect=False)
                c.sock = c.tls
                sel.register(c.sock, selectors.EVENT_READ, c)
            c.phase = "handshake"
        if c.phase == "handshake":
            try:
                c.tls.do_handshake()
            except WantRead:
                return sel.modify(c.sock, selectors.EVENT_READ, c)
            except WantWrite:
                return sel.modify(c.sock, selectors.EVENT_WRITE, c)
            except (TLSError, OSError) as e:
                return fail(c, f"handshake:{type(e).__name__}")
            if not first_info:
                if use_pyo:
                    first_info.update(version=c.tls.get_protocol_version_name(),
                                      cipher=c.tls.get_cipher_name())
                else:
                    first_info.update(info(c.tls))
            try:
                c.tls.send(b"!")
            except (TLSError, OSError) as e:
                return fail(c, f"send:{type(e).__name__}")
            c.phase = "echo"
            return sel.modify(c.sock, selectors.EVENT_READ, c)
        if c.phase == "echo":
            try:
                data = c.tls.recv(100)
            except WantRead:
                return
            except (TLSError, OSError) as e:
                if use_pyo and isinstance(e, SSL.ZeroReturnError):
                    data = b""
                else:
                    return fail(c, f"echo:{type(e).__name__}")
            if not data:
                return fail(c, "echo:eof")
            done += 1
            finish(c)
            start()

    for _ in range(args.concurrency):
        start()
    t_start = time.monotonic() + args.warmup
    t_end = t_start + args.seconds
    marked = False
    c0, d0 = 0.0, 0
    while True:
        t = time.monotonic()
        if not marked and t >= t_start:
            marked, c0, d0 = True, cpu_self(), done
            out("MARK start")
        if t >= t_end:
            break
        for key, _ in sel.select(0.5):
            step(key.data)
    out("MARK end")
    c1, d1 = cpu_self(), done
    out("RESULT " + json.dumps({"handshakes": d1 - d0, "client_cpu": c1 - c0, "errors": errors,
                                "lib": args.lib, **first_info}))
    return 0


def client_idle(args) -> int:
    ctx = context(args)
    socks = []
    t0 = time.monotonic()
    for _ in range(args.connections):
        s = connect(ctx, args)
        s.sendall(b"!")
        if s.recv(10) != b"!":
            raise SystemExit("idle: no echo")
        socks.append(s)
    out("MARK opened " + json.dumps({"connections": len(socks), "seconds": time.monotonic() - t0,
                                     **info(socks[0])}))
    sys.stdin.readline()
    # Check they are all still alive (nothing closed them while idle).
    alive = 0
    for s in socks:
        try:
            s.sendall(b"?")
            if s.recv(10) == b"?":
                alive += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    out("RESULT " + json.dumps({"alive": alive}))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("backend")
    c = sub.add_parser("client")
    c.add_argument("kind", choices=("bulk", "rr", "handshake", "idle"))
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--sni", default="example.com")
    c.add_argument("--ca")
    c.add_argument("--no-verify", action="store_true", help="skip certificate verification (cheaper client)")
    c.add_argument("--connections", type=int, default=1)
    c.add_argument("--concurrency", type=int, default=16)
    c.add_argument("--chunk", type=int, default=256 * KiB)
    c.add_argument("--size", type=int, default=64)
    c.add_argument("--lib", choices=("pyopenssl", "stdlib"), default="pyopenssl", help="handshake client's TLS")
    c.add_argument("--seconds", type=float, default=3.0)
    c.add_argument("--warmup", type=float, default=0.5)
    args = p.parse_args(argv)
    if args.cmd == "backend":
        return backend(args)
    return {"bulk": client_bulk, "rr": client_rr, "handshake": client_handshake, "idle": client_idle}[args.kind](args)


if __name__ == "__main__":
    sys.exit(main())
