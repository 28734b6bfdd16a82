"""
Faults: clients vanishing mid-transfer, backends refusing or resetting,
slow-loris handshakes, 1,000 concurrent connections, a slow reader while
1 GiB flows, and bursts of short (good, garbage and vanished) connections.
In each the proxy stays up, other connections lose nothing, its peak memory
stays bounded and nothing leaks afterwards: its open fds (/proc/PID/fd)
come back to where they were.

(Backend down, garbage instead of a ClientHello, the handshake timeout and
a 64 MiB slow reader on their own are in test_relay.py, test_lifecycle.py
and test_flow.py.)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import pki
from tests.proxy.faulthelpers import (
    AsyncEchoBackend,
    MiB,
    NeverReads,
    StreamServer,
    clientHello,
    closeLine,
    connId,
    fdCount,
    peakRss,
    readExactly,
    resetPeakRss,
    runningFdCount,
    silentTLSClient,
    streamDigest,
    vanish,
    waitFdCount,
)
from tests.proxy.helpers import (
    TIMEOUT,
    clientContext,
    connect,
    echo,
    echoRoundTrip,
    readToEnd,
)

GiB = 1024 * MiB


def terminate(start_proxy, pems, backendPort, *extra):
    return start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{backendPort}",
                       "--cert", pems.cert, "--key", pems.key, *extra)


def assertFdsBack(proxy, baseline):
    count = waitFdCount(proxy.process.pid, baseline)
    assert count == baseline, (f"proxy has {count} fds open, {baseline} before: "
                               f"{sorted(os.readlink(f'/proc/{proxy.process.pid}/fd/{fd}') for fd in os.listdir(f'/proc/{proxy.process.pid}/fd'))}")


def assertEchoWorks(proxy, pems, size=64 * 1024):
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, size)
        assert received == sent
        sock.unwrap()


def test_client_vanishing_mid_transfer(pems, start_proxy, backend):
    """
    A client that resets its connection in the middle of a 1 GiB download,
    while another connection is half-way through a 128 MiB one: the other's
    bytes all arrive (sha256), the proxy logs the vanished client's close
    with its error and closes its backend connection (whose writes then
    fail), stays up, and is back to its fds.
    """
    streams = StreamServer()
    server = backend(streams)
    proxy = terminate(start_proxy, pems, server.port, "--metrics", "127.0.0.1:0")
    baseline = runningFdCount(proxy)
    keeperSize = 128 * MiB
    halfway, resume = threading.Event(), threading.Event()
    keeper: dict = {}

    def keep():
        try:
            with connect(proxy.port, clientContext(pems.ca)) as sock:
                sock.sendall(f"keeper {keeperSize}\n".encode())
                digest = hashlib.sha256()
                count = readExactly(sock, keeperSize // 2, digest)
                halfway.set()
                if not resume.wait(TIMEOUT):
                    raise AssertionError("never resumed")
                count += readExactly(sock, keeperSize - count, digest)
                keeper["count"], keeper["digest"] = count, digest.hexdigest()
                assert sock.recv(1) == b""  # then a clean close (close_notify)
                keeper["clean"] = True
        except BaseException as e:  # noqa: BLE001 (reported by the test's thread)
            keeper["error"] = e
        finally:
            halfway.set()

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    try:
        assert halfway.wait(TIMEOUT) and "error" not in keeper, keeper
        sock = connect(proxy.port, clientContext(pems.ca))
        conn = connId(proxy, sock)
        sock.sendall(f"vanisher {GiB}\n".encode())
        assert readExactly(sock, 8 * MiB) == 8 * MiB
        vanish(sock)  # RST mid-transfer: no close_notify, no FIN
        close = closeLine(proxy, conn)
        assert "by=client" in close and "error=" in close, close
        # The proxy closed the backend side: the backend's writes fail.
        outcome = streams.waitOutcome("vanisher")
        assert isinstance(outcome, (ConnectionResetError, BrokenPipeError)), outcome
    finally:
        resume.set()
        thread.join(3 * TIMEOUT)
    assert "error" not in keeper, keeper["error"]
    assert keeper["count"] == keeperSize and keeper["digest"] == streamDigest("keeper", keeperSize)
    assert keeper.get("clean")
    assert streams.waitOutcome("keeper") == "sent"
    assert proxy.process.poll() is None
    # Still serving.
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sock.sendall(b"echo\n")
        sent, received = echoRoundTrip(sock, 256 * 1024)
        assert received == sent
        sock.unwrap()
    proxy.waitFor(r"event=close ", 3)
    assertFdsBack(proxy, baseline)


def test_backend_refusing_or_resetting(pems, start_proxy, backend, tmp_path):
    """
    Backend refusing (nothing listening) and backend accepting then
    resetting at once: the client gets a clean close (close_notify, not a
    reset or a hang), the log says why, and the next connection, to a
    working backend through the same listener, is served.
    """
    identity = pki.leaf("ecdsa", names=("example.com", "reset.example", "good.example"))
    cert, key = tmp_path / "multi.crt", tmp_path / "multi.key"
    cert.write_bytes(identity.cert_pem)
    key.write_bytes(identity.key_pem)

    def resetAtOnce(sock):
        vanish(sock)

    resetting, good = backend(resetAtOnce), backend(echo)
    with socket.socket() as reserved:  # bound, not listening: connecting is refused
        reserved.bind(("127.0.0.1", 0))
        refusedPort = reserved.getsockname()[1]
        proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{refusedPort}",
                            "--cert", cert, "--key", key,
                            "--route", f"reset.example=127.0.0.1:{resetting.port}",
                            "--route", f"good.example=127.0.0.1:{good.port}", "--metrics", "127.0.0.1:0")
        baseline = runningFdCount(proxy)
        conns = []
        for name in ("example.com", "reset.example", "example.com", "reset.example"):
            with connect(proxy.port, clientContext(pems.ca), name=name) as sock:
                conn = connId(proxy, sock)
                conns.append((name, conn))
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                # suppress_ragged_eofs=False: a reset or a FIN without
                # close_notify raises; a hang times out.
                assert readToEnd(sock) == b""
            if name == "example.com":
                [failed] = proxy.waitFor(rf"event=backend_failed .*conn={conn}\b")
                assert "refused" in failed.lower() and f"backend=127.0.0.1:{refusedPort}" in failed
            with connect(proxy.port, clientContext(pems.ca), name="good.example") as sock:
                sent, received = echoRoundTrip(sock, 64 * 1024)
                assert received == sent
                sock.unwrap()
    assert resetting.accepted == 2 and good.accepted == 4
    assert proxy.process.poll() is None
    # Each client closed its end after the proxy's close_notify: the proxy
    # must see that, log the close, and let go of the connection.
    for name, conn in conns:
        close = closeLine(proxy, conn)
        if name == "example.com":
            assert "by=backend_failed" in close, close
        else:
            # Reset before or after the proxy saw the connect complete.
            assert re.search(r"by=backend(_failed)?\b", close), close
            if "by=backend_failed" in close:
                assert proxy.waitFor(rf"event=backend_failed .*conn={conn}\b.*error=")
    assertFdsBack(proxy, baseline)


def test_slow_loris_handshakes(pems, start_proxy, backend):
    """
    50 clients send the start of a ClientHello and then stall (half) or
    trickle a byte every 0.2 s (half, never finishing): with
    --handshake-timeout 1 the proxy closes every one (a deadline, not an
    inactivity timer: the trickle would last ~100 s), serves a normal
    client meanwhile, and never dials the backend for them.
    """
    server = backend(echo)
    proxy = terminate(start_proxy, pems, server.port, "--handshake-timeout", "1", "--metrics", "127.0.0.1:0")
    baseline = runningFdCount(proxy)
    hello = clientHello()
    selector = selectors.DefaultSelector()
    clients = []
    for index in range(50):
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
        sock.sendall(hello[:10])
        sock.setblocking(False)
        client = {"sock": sock, "trickle": index % 2 == 1, "sent": 10, "closed": None,
                  "port": sock.getsockname()[1]}
        clients.append(client)
        selector.register(sock, selectors.EVENT_READ, client)

    normal: dict = {}

    def normalClient():
        try:
            with connect(proxy.port, clientContext(pems.ca)) as sock:
                sent, received = echoRoundTrip(sock, 64 * 1024)
                normal["ok"] = received == sent
                sock.unwrap()
        except BaseException as e:  # noqa: BLE001 (reported by the test's thread)
            normal["error"] = e

    thread = threading.Thread(target=normalClient, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    nextTrickle = time.monotonic()
    try:
        while any(c["closed"] is None for c in clients) and time.monotonic() < deadline:
            if time.monotonic() >= nextTrickle:
                nextTrickle += 0.2
                for client in clients:
                    if client["trickle"] and client["closed"] is None and client["sent"] < len(hello) - 1:
                        try:
                            client["sock"].send(hello[client["sent"]:client["sent"] + 1])
                            client["sent"] += 1
                        except OSError as e:
                            client["closed"] = repr(e)
                            selector.unregister(client["sock"])
            for key, _ in selector.select(timeout=0.05):
                client = key.data
                try:
                    data = client["sock"].recv(4096)
                except BlockingIOError:
                    continue
                except OSError as e:
                    data = repr(e).encode()
                    client["closed"] = repr(e)
                else:
                    if data:  # the proxy has nothing to say to half a ClientHello
                        client["closed"] = f"unexpected data {data[:20]!r}"
                    else:
                        client["closed"] = "eof"
                selector.unregister(client["sock"])
        thread.join(TIMEOUT)
    finally:
        for client in clients:
            client["sock"].close()
        selector.close()
    stillOpen = [c["port"] for c in clients if c["closed"] is None]
    assert not stillOpen, f"{len(stillOpen)} slow-loris clients not closed by the proxy after {TIMEOUT} s"
    unexpected = [c["closed"] for c in clients if c["closed"].startswith("unexpected")]
    assert not unexpected, unexpected
    assert "error" not in normal and normal.get("ok"), normal
    trickled = [c["sent"] for c in clients if c["trickle"]]
    assert max(trickled) < len(hello) - 1  # none ever finished its ClientHello
    for client in clients:
        line = proxy.waitFor(rf"event=accept .*client=127\.0\.0\.1:{client['port']}\b")[0]
        conn = re.search(r"conn=(\d+)", line).group(1)
        close = closeLine(proxy, conn)
        assert "by=handshake_failed" in close and "handshake" in close.split("error=", 1)[-1].lower(), close
        assert not proxy.waitFor(rf"event=backend_ready .*conn={conn}\b", 0)
    assert server.accepted == 1  # only the normal client's
    assert len(proxy.waitFor(r"event=backend_ready", 0)) == 1
    assert proxy.process.poll() is None
    assertFdsBack(proxy, baseline)


@pytest.mark.slow
def test_thousand_concurrent_connections(pems, start_proxy):
    """
    1,000 TLS connections open at once (asyncio on both ends, not 1,000
    threads), each with its own echo round trip, byte-exact; all are open at
    the same time (the proxy holds 2,000 more fds, the backend 1,000
    connections), then all close: 1,000 close lines with the right byte
    counts, and the proxy's fds are back to where they were.
    """
    echoServer = AsyncEchoBackend()
    try:
        proxy = terminate(start_proxy, pems, echoServer.port, "--metrics", "127.0.0.1:0")
        pid = proxy.process.pid
        baseline = runningFdCount(proxy)
        context = clientContext(pems.ca)
        count = 1000
        size = 2000
        observed: dict = {}

        async def main():
            connecting = asyncio.Semaphore(100)  # handshakes in flight; all stay open
            allEchoed = asyncio.Event()
            echoed = 0

            async def one(index):
                nonlocal echoed
                async with connecting:
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", proxy.port, ssl=context, server_hostname="example.com")
                    payload = f"{index:06d}:".encode() + os.urandom(size - 7)
                    writer.write(payload)
                    received = await reader.readexactly(size)
                echoed += 1
                if echoed == count:
                    # Everything is open now: nothing closes before allEchoed.
                    observed["fds"] = fdCount(pid)
                    observed["backendOpen"] = echoServer.open
                    allEchoed.set()
                await allEchoed.wait()
                writer.close()
                await writer.wait_closed()
                return received == payload

            tasks = [asyncio.ensure_future(one(index)) for index in range(count)]
            await asyncio.wait_for(allEchoed.wait(), 6 * TIMEOUT)
            return await asyncio.wait_for(asyncio.gather(*tasks), 3 * TIMEOUT)

        results = asyncio.run(main())
        assert results.count(True) == count
        assert observed["backendOpen"] == count
        assert observed["fds"] >= baseline + 2 * count, observed
        closes = proxy.waitFor(r"event=close ", count)
        assert len(closes) == count
        assert len({re.search(r"conn=(\d+)", line).group(1) for line in closes}) == count
        for line in closes:
            assert re.search(rf"by=client .*bytes_from_client={size} bytes_from_backend={size}$", line), line
        assert echoServer.accepted == count
        assert proxy.process.poll() is None
        assertFdsBack(proxy, baseline)
    finally:
        echoServer.close()


@pytest.mark.slow
def test_slow_reader_while_a_gigabyte_flows(pems, start_proxy, backend):
    """
    One client downloads 1 GiB, reading in 64 MiB bursts with pauses
    (back-pressure engages in each), while a second connection does echo
    round trips, every one intact: the GiB arrives intact (sha256), the
    proxy's peak RSS (VmHWM, reset before the transfer) stays within 32 MiB
    of where it was, and its fds come back afterwards.
    """
    streams = StreamServer()
    server = backend(streams)
    proxy = terminate(start_proxy, pems, server.port, "--metrics", "127.0.0.1:0")
    pid = proxy.process.pid
    baseline = runningFdCount(proxy)  # (at once, it may miss the reactor's signal waker)
    burst = 64 * MiB
    connected, go, done = threading.Event(), threading.Event(), threading.Event()
    results: dict = {"echoes": 0, "echoFailures": []}
    echoProgress = threading.Condition()

    def download():
        try:
            with connect(proxy.port, clientContext(pems.ca)) as sock:
                connected.set()
                if not go.wait(TIMEOUT):
                    raise AssertionError("no go")
                sock.sendall(f"big {GiB}\n".encode())
                digest, count = hashlib.sha256(), 0
                while count < GiB:
                    got = readExactly(sock, min(burst, GiB - count), digest)
                    count += got
                    if not got:
                        break
                    # A pause: the proxy's buffers towards us fill and it must
                    # stop reading the backend.  Wait for an echo in the meantime.
                    with echoProgress:
                        before = results["echoes"]
                        time.sleep(0.25)
                        echoProgress.wait_for(
                            lambda before=before: results["echoes"] > before or results["echoFailures"], TIMEOUT)
                results["count"], results["digest"] = count, digest.hexdigest()
                assert sock.recv(1) == b""
                results["clean"] = True
        except BaseException as e:  # noqa: BLE001 (reported by the test's thread)
            results["downloadError"] = e
        finally:
            connected.set()
            done.set()

    def echoes():
        try:
            with connect(proxy.port, clientContext(pems.ca)) as sock:
                sock.sendall(b"echo\n")
                sent, received = echoRoundTrip(sock, 64 * 1024)
                assert received == sent
                results["echoReady"] = True
                if not go.wait(TIMEOUT):
                    raise AssertionError("no go")
                while not done.is_set():
                    sent, received = echoRoundTrip(sock, 64 * 1024)
                    with echoProgress:
                        if received == sent:
                            results["echoes"] += 1
                        else:
                            results["echoFailures"].append((sent, received))
                        echoProgress.notify_all()
                sock.unwrap()
        except BaseException as e:  # noqa: BLE001 (reported by the test's thread)
            with echoProgress:
                results["echoFailures"].append(e)
                echoProgress.notify_all()

    threads = [threading.Thread(target=download, daemon=True), threading.Thread(target=echoes, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        assert connected.wait(TIMEOUT)
        proxy.waitFor(r"event=backend_ready", 2)
        deadline = time.monotonic() + TIMEOUT
        while not results.get("echoReady") and not results["echoFailures"] and time.monotonic() < deadline:
            time.sleep(0.01)
        baselineRss = resetPeakRss(pid)
    finally:
        go.set()
    for thread in threads:
        thread.join(12 * TIMEOUT)
    peak = peakRss(pid)
    assert "downloadError" not in results, results["downloadError"]
    assert not results["echoFailures"], results["echoFailures"][:3]
    assert results["count"] == GiB and results["digest"] == streamDigest("big", GiB)
    assert results.get("clean")
    # At least one echo per pause (16 bursts), all while the GiB was flowing.
    assert results["echoes"] >= GiB // burst
    assert peak - baselineRss < 32 * MiB, f"proxy peak RSS grew by {(peak - baselineRss) / MiB:.1f} MiB"
    assert streams.waitOutcome("big") == "sent"
    assert proxy.process.poll() is None
    proxy.waitFor(r"event=close ", 2)
    assertFdsBack(proxy, baseline)


def _short(kind: int, port: int, cafile: str, hello: bytes) -> None:
    """One short connection of five kinds: normal, garbage, vanished after data / mid-handshake / at once."""
    if kind == 0:
        with connect(port, clientContext(cafile)) as sock:
            sent, received = echoRoundTrip(sock, 16 * 1024)
            assert received == sent
            sock.unwrap()
    elif kind == 1:
        with connect(port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" * 4)
            try:
                while sock.recv(65536):
                    pass
            except ConnectionResetError:
                pass
    elif kind == 2:
        sock = connect(port, clientContext(cafile))
        sock.sendall(os.urandom(32 * 1024))
        sock.recv(1024)
        vanish(sock)
    elif kind == 3:
        sock = connect(port)
        sock.sendall(hello[:len(hello) // 2])
        vanish(sock)
    else:
        vanish(connect(port))


@pytest.mark.slow
def test_nothing_leaks_after_bursts(pems, start_proxy, backend):
    """
    Bursts of 300 short connections (normal echo, garbage, vanished after
    data, mid-handshake, or at once): after each, every connection has its
    close line and the proxy's fds are back where they were; its RSS after
    the third burst is within a generous 8 MiB of after the second (a leak
    of the ~300 connections' TLS state would be more).
    """
    server = backend(echo)
    proxy = terminate(start_proxy, pems, server.port, "--metrics", "127.0.0.1:0")
    baseline = runningFdCount(proxy)
    hello = clientHello()
    perBurst = 300
    rss = []
    with ThreadPoolExecutor(max_workers=12) as pool:
        for burst in range(3):
            for future in [pool.submit(_short, i % 5, proxy.port, pems.ca, hello) for i in range(perBurst)]:
                future.result(timeout=TIMEOUT)
            proxy.waitFor(r"event=close ", perBurst * (burst + 1))
            assertFdsBack(proxy, baseline)
            rss.append(proxy.rssBytes())
    assert len(proxy.waitFor(r"event=accept ", 0)) == 3 * perBurst
    assert proxy.process.poll() is None
    assertEchoWorks(proxy, pems)
    assert rss[2] - rss[1] < 8 * MiB, f"RSS after each burst: {[r // 1024 for r in rss]} KiB"


# -- graceful closes have a deadline (issue #12, finding 1) ----------------------------

def test_idle_clients_that_never_answer_close_notify_give_their_slots_back(pems, start_proxy, backend):
    """
    Three TLS clients complete their handshake and go silent, never reading
    (so never answering the close_notify of the idle timeout), holding all
    slots of --max-connections 3: at the close deadline after the idle
    timeout they are cut, and a fourth client, waiting in the backlog, gets
    its handshake and is served.
    """
    server = backend(echo)
    idle, close = 0.5, 1.0
    proxy = terminate(start_proxy, pems, server.port, "--max-connections", "3", "--idle-timeout", str(idle),
                      "--close-timeout", str(close), "--metrics", "127.0.0.1:0")
    baseline = runningFdCount(proxy)
    silent = [connect(proxy.port, clientContext(pems.ca)) for _ in range(3)]
    try:
        proxy.waitFor(r"event=max_connections")
        started = time.monotonic()
        fourth = connect(proxy.port, clientContext(pems.ca))  # handshakes once a slot is free
        waited = time.monotonic() - started
        with fourth:
            sent, received = echoRoundTrip(fourth, 16 * 1024)
            assert received == sent
            fourth.unwrap()
        closes = proxy.waitFor(r"event=close .*by=idle_timeout", 3)  # the silent ones still silent
    finally:
        for sock in silent:
            sock.close()
    assert waited < idle + close + 5, f"a slot came back after {waited:.1f} s"
    assert all("aborted=close_deadline" in line for line in closes), "\n".join(closes)
    assert proxy.process.poll() is None
    assertFdsBack(proxy, baseline)


def test_backend_that_never_reads_is_cut_at_the_close_deadline(pems, start_proxy, backend):
    """
    A client sends much more than the buffers hold to a backend that never
    reads: flow control stalls the client, the idle timeout starts a close
    that cannot flush (what the client sends meanwhile is dropped, not
    buffered), and the close deadline aborts both sockets.
    """
    neverReads = NeverReads()
    server = backend(neverReads)
    idle, close = 0.5, 1.0
    proxy = terminate(start_proxy, pems, server.port, "--idle-timeout", str(idle), "--close-timeout", str(close),
                      "--metrics", "127.0.0.1:0")
    baseline = runningFdCount(proxy)
    outcome: dict = {}
    try:
        with connect(proxy.port, clientContext(pems.ca)) as sock:
            conn = connId(proxy, sock)
            assert neverReads.accepted.wait(TIMEOUT)
            started = time.monotonic()
            chunk = os.urandom(MiB)
            sock.settimeout(idle + close + 5)
            try:  # until the proxy cuts us (or gives up on us: a timeout)
                while time.monotonic() - started < idle + close + 5:
                    sock.sendall(chunk)
            except OSError as e:
                outcome["error"] = e
            outcome["seconds"] = time.monotonic() - started
        line = closeLine(proxy, conn)
        assert "by=idle_timeout aborted=close_deadline" in line, line
        assert isinstance(outcome.get("error"), (ConnectionError, ssl.SSLError)), outcome  # cut, not timed out
        assert outcome["seconds"] < idle + close + 5, outcome
        assert proxy.process.poll() is None
        assertFdsBack(proxy, baseline)  # both sockets
    finally:
        neverReads.release.set()


def test_thousand_silent_clients_give_every_slot_back(pems, start_proxy, backend):
    """
    1,000 TLS clients that complete their handshake and then neither send
    nor read, against --max-connections 100 and a short idle timeout: each
    batch is cut at its idle timeout plus the close deadline (they never
    answer the close_notify), so every one is served its handshake in turn; afterwards all 1,000 closes are logged,
    the open-connections gauge is back to 0, the fds are back, and a new
    client is served.
    """
    from tests.proxy.test_operations import metricsPort, scrape

    server = backend(echo)
    count = 1000
    proxy = terminate(start_proxy, pems, server.port, "--max-connections", "100", "--idle-timeout", "0.5",
                      "--close-timeout", "0.5", "--metrics", "127.0.0.1:0", "--log-level", "info")
    baseline = runningFdCount(proxy)
    context = clientContext(pems.ca)

    async def main():
        connecting = asyncio.Semaphore(100)  # handshakes under way (a batch); the rest wait their turn

        async def one():
            async with connecting:
                return await silentTLSClient(proxy.port, context)

        started = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count)), return_exceptions=True),
                                         3 * TIMEOUT)
        seconds = time.monotonic() - started
        # The last batch stays silent too, until the proxy has cut it.
        closes = await asyncio.to_thread(proxy.waitFor, r"event=close ", count)
        for writer in results:
            if not isinstance(writer, BaseException):
                writer.transport.abort()
        return seconds, closes, [e for e in results if isinstance(e, BaseException)]

    seconds, closes, failures = asyncio.run(main())
    assert not failures, failures[:3]
    assert len(closes) == count
    assert all(" by=idle_timeout " in line for line in closes), [line for line in closes if " by=idle_timeout " not in line][:3]
    # Each held its slot for at most the idle timeout plus the close deadline
    # (and some scheduling): the ones that finished their handshake never
    # answered the close_notify and were cut; a few the idle timeout caught
    # in their handshake (the proxy had not read their Finished yet) went at once.
    assert max(float(re.search(r"seconds=([\d.]+)", line).group(1)) for line in closes) < 0.5 + 0.5 + 5
    assert sum("aborted=close_deadline" in line for line in closes) > count // 2
    samples = scrape(metricsPort(proxy))
    assert samples[("tlsfast_proxy_connections_open", frozenset({("listener", "l0")}))] == 0
    assert samples[("tlsfast_proxy_connections_total", frozenset({("listener", "l0")}))] == count
    assertEchoWorks(proxy, pems)
    assert proxy.process.poll() is None
    assertFdsBack(proxy, baseline)
    assert seconds < 30, f"{count} silent clients took {seconds:.1f} s"


# -- what is an error in the close line (issue #12, finding 7) ---------------------------

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"


def _httpBackend(sock):
    """An HTTP/1.1 server with Connection: close: answer, then close (FIN); or 'reset' mid-answer."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = sock.recv(65536)
        if not chunk:
            return
        request += chunk
    if request.startswith(b"GET /reset "):
        sock.sendall(RESPONSE[:20])
        vanish(sock)
        return
    sock.sendall(RESPONSE)


def test_ordinary_closes_are_not_errors_real_ones_are(pems, start_proxy, backend):
    """
    An HTTP backend answers and closes; the client reads the answer and the
    proxy's close_notify, then goes without answering it (as curl does, its
    socket closed with the close_notify unread: a RST).  That is the
    ordinary end of an HTTP request: the close line has no error.  A client
    resetting mid-transfer and a backend resetting mid-answer are errors,
    and their close lines say so.
    """
    streams = StreamServer()
    http, streaming = backend(_httpBackend), backend(streams)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{http.port}",
                        "--cert", pems.cert, "--key", pems.key, "--alpn", "h2,x-stream",
                        "--alpn-route", f"x-stream=127.0.0.1:{streaming.port}")
    for _ in range(3):
        with connect(proxy.port, clientContext(pems.ca)) as sock:
            conn = connId(proxy, sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
            assert readToEnd(sock) == RESPONSE  # ends with the proxy's close_notify
            vanish(sock)
        line = closeLine(proxy, conn)
        assert " by=backend " in line and "error=" not in line, line

    with connect(proxy.port, clientContext(pems.ca)) as sock:
        conn = connId(proxy, sock)
        sock.sendall(b"GET /reset HTTP/1.1\r\nHost: example.com\r\n\r\n")
        readToEnd(sock)  # (the proxy closes the client cleanly all the same)
    line = closeLine(proxy, conn)
    assert " by=backend " in line and "backend_error=" in line, line

    with connect(proxy.port, clientContext(pems.ca, alpn=["x-stream"])) as sock:
        conn = connId(proxy, sock)
        sock.sendall(f"resetter {GiB}\n".encode())
        assert readExactly(sock, MiB) == MiB
        vanish(sock)
    line = closeLine(proxy, conn)
    assert " by=client " in line and " error=" in line, line
