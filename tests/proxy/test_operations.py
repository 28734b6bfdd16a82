"""Operations: the Prometheus endpoint, reload on SIGHUP, and --workers."""

import os
import re
import signal
import socket
import ssl
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import pki
from tests.proxy.helpers import TIMEOUT, clientContext, connect, echo, echoRoundTrip, readToEnd


def scrape(port) -> dict:
    """{(sample name, frozenset(labels)): value} from the metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT) as response:
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metricsPort(proxy) -> int:
    return int(re.search(r"address=\S+:(\d+)", proxy.waitFor(r"event=metrics ")[0]).group(1))


def test_metrics(pems, start_proxy, backend):
    server = backend(echo)
    dead = socket.create_server(("127.0.0.1", 0))
    deadPort = dead.getsockname()[1]
    dead.close()  # nothing listens there now: connections are refused
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--metrics", "127.0.0.1:0",
                        "--route", f"down.example=127.0.0.1:{deadPort}")
    port = metricsPort(proxy)
    listener = ("listener", "l0")
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 100_000)
        assert received == sent
        during = scrape(port)
        sock.unwrap()
    assert during[("tlsfast_proxy_connections_open", frozenset([listener]))] == 1
    assert during[("tlsfast_proxy_bytes_total", frozenset([listener, ("direction", "client_to_backend")]))] == 100_000
    with connect(proxy.port) as sock:  # not TLS
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            sock.recv(100)
        except ConnectionResetError:
            pass
    anyName = clientContext(pems.ca)
    anyName.check_hostname = False  # the certificate is for example.com only
    with connect(proxy.port, anyName, name="down.example") as sock:
        assert readToEnd(sock) == b""
    proxy.waitFor(r"event=close ", 3)
    after = scrape(port)
    assert after[("tlsfast_proxy_connections_total", frozenset([listener]))] == 3
    assert after[("tlsfast_proxy_connections_open", frozenset([listener]))] == 0
    assert after[("tlsfast_proxy_handshakes_total", frozenset([listener]))] == 2
    failures = {dict(labels)["reason"]: value for (name, labels), value in after.items()
                if name == "tlsfast_proxy_handshake_failures_total"}
    assert failures == {"http_request": 1}  # OpenSSL's name for HTTP sent to a TLS port
    assert after[("tlsfast_proxy_backend_errors_total", frozenset([listener, ("reason", "refused")]))] == 1
    assert after[("tlsfast_proxy_bytes_total", frozenset([listener, ("direction", "client_to_backend")]))] == 100_000
    assert after[("tlsfast_proxy_bytes_total", frozenset([listener, ("direction", "backend_to_client")]))] == 100_000
    assert after[("tlsfast_proxy_closes_total", frozenset([listener, ("by", "client")]))] == 1
    assert after[("process_resident_memory_bytes", frozenset())] > 0


def tagged(tag):
    def handler(sock):
        while data := sock.recv(100):
            sock.sendall(tag + data)
    return handler


def writeConfig(path, listeners):
    text = ""
    for name, backendPort, cert, key, listen in listeners:
        text += (f'[[listener]]\nname = "{name}"\nlisten = "{listen}"\nbackend = "127.0.0.1:{backendPort}"\n'
                 f'cert = "{cert}"\nkey = "{key}"\n\n')
    path.write_text(text)


def peerCertificate(sock) -> bytes:
    return sock.getpeercert(binary_form=True)


def test_sighup_reloads_without_dropping_connections(pems, start_proxy, backend, tmp_path):
    one, two, three = backend(tagged(b"1:")), backend(tagged(b"2:")), backend(tagged(b"3:"))
    renewed = pki.leaf("ecdsa", names=("example.com", "renewed.example"))
    files = pki.write_pems(str(tmp_path), {"new-cert": renewed.cert_pem, "new-key": renewed.key_pem})
    config = tmp_path / "proxy.toml"
    writeConfig(config, [("web", one.port, pems.cert, pems.key, "127.0.0.1:0")])
    proxy = start_proxy("--config", config)
    web = proxy.ports["web"]
    established = connect(web, clientContext(pems.ca))
    established.sendall(b"a")
    assert established.recv(100) == b"1:a"
    before = peerCertificate(established)

    # New certificate and backend for "web", and a second listener.
    writeConfig(config, [("web", two.port, files["new-cert"], files["new-key"], f"127.0.0.1:{web}"),
                         ("api", three.port, pems.cert, pems.key, "127.0.0.1:0")])
    proxy.process.send_signal(signal.SIGHUP)
    assert "updated=web" in proxy.waitFor(r"event=reloaded")[0]
    apiPort = int(re.search(r"address=\S+:(\d+)", proxy.waitFor(r"event=listening listener=api")[0]).group(1))
    established.sendall(b"b")
    assert established.recv(100) == b"1:b"  # the old connection, untouched
    with connect(web, clientContext(pems.ca)) as sock:
        sock.sendall(b"c")
        assert sock.recv(100) == b"2:c"
        assert peerCertificate(sock) != before
        assert peerCertificate(sock) == ssl.PEM_cert_to_DER_cert(renewed.cert_pem.decode())
    with connect(apiPort, clientContext(pems.ca)) as sock:
        sock.sendall(b"d")
        assert sock.recv(100) == b"3:d"

    # A broken configuration changes nothing.
    writeConfig(config, [("web", one.port, str(tmp_path / "missing.pem"), pems.key, f"127.0.0.1:{web}")])
    proxy.process.send_signal(signal.SIGHUP)
    assert "missing.pem" in proxy.waitFor(r"event=reload_failed")[0]
    with connect(apiPort, clientContext(pems.ca)) as sock:
        sock.sendall(b"e")
        assert sock.recv(100) == b"3:e"

    # Dropping "api" stops its socket; "web" goes on.
    writeConfig(config, [("web", two.port, files["new-cert"], files["new-key"], f"127.0.0.1:{web}")])
    proxy.process.send_signal(signal.SIGHUP)
    assert "removed=api" in proxy.waitFor(r"event=reloaded", 2)[1]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", apiPort), timeout=TIMEOUT)
    established.sendall(b"f")
    assert established.recv(100) == b"1:f"
    established.close()
    assert proxy.process.poll() is None


def children(pid) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_workers_share_the_port(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--workers", "2", listeners=2)
    ports = {int(re.search(r"address=\S+:(\d+)", line).group(1))
             for line in proxy.waitFor(r"event=listening", 2)}
    assert len(ports) == 1  # port 0: one port, chosen once for both
    [port] = ports
    for _ in range(40):  # the kernel hashes each connection to one of the workers
        with connect(port, clientContext(pems.ca)) as sock:
            sent, received = echoRoundTrip(sock, 1000)
            assert received == sent
    accepts = proxy.waitFor(r"event=accept ", 40)
    assert {re.search(r"worker=(\d)", line).group(1) for line in accepts} == {"0", "1"}

    # A worker that dies is replaced; the port keeps serving meanwhile.
    workers = children(proxy.process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    proxy.waitFor(r"event=worker_exited")
    proxy.waitFor(r"event=listening", 3)
    deadline = time.monotonic() + TIMEOUT
    while len(children(proxy.process.pid)) != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(children(proxy.process.pid)) == 2
    with connect(port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 1000)
        assert received == sent

    # SIGHUP reaches every worker; SIGTERM stops them all.
    proxy.process.send_signal(signal.SIGHUP)
    reloaded = proxy.waitFor(r"event=reloaded", 2)
    assert {re.search(r"worker=(\d)", line).group(1) for line in reloaded} == {"0", "1"}
    assert proxy.terminate() == 0
    assert proxy.waitFor(r"event=stopped workers=2")


def test_worker_startup_failure_stops_all(pems):
    from tests.proxy.helpers import runProxy

    taken = socket.create_server(("127.0.0.1", 0))  # no SO_REUSEPORT: the workers cannot join it
    try:
        completed = runProxy(["--listen", f"127.0.0.1:{taken.getsockname()[1]}", "--backend", "127.0.0.1:9",
                              "--cert", pems.cert, "--key", pems.key, "--workers", "2"])
    finally:
        taken.close()
    assert completed.returncode == 3
    assert "cannot listen" in completed.stderr and "worker_failed" in completed.stderr


def test_default_log_is_one_line_per_connection(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--log-level", "info", "--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--alpn", "http/1.1")
    with connect(proxy.port, clientContext(pems.ca, alpn=["http/1.1"])) as sock:
        clientPort = sock.getsockname()[1]
        sent, received = echoRoundTrip(sock, 5000)
        assert received == sent
        sock.unwrap()
    [close] = proxy.waitFor(r"event=close ")
    for field in (f"client=127.0.0.1:{clientPort}", "sni=example.com", "tls_version=TLSv1.3", "alpn=http/1.1",
                  "resumed=False", f"backend=127.0.0.1:{server.port}", "bytes_from_client=5000",
                  "bytes_from_backend=5000", "by=client", "seconds="):
        assert field in close, (field, close)
    connectionLines = [line for line in proxy.lines if "conn=" in line]
    assert connectionLines == [close]  # no accept/handshake/backend_ready lines at info


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped
    except FileNotFoundError:
        return False


def test_workers_stop_when_the_supervisor_is_killed(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--workers", "2", listeners=2)
    workers = children(proxy.process.pid)
    assert len(workers) == 2
    proxy.process.kill()  # SIGKILL: the supervisor cannot pass anything on
    proxy.wait()
    deadline = time.monotonic() + TIMEOUT
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in workers)
