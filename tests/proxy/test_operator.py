"""
What operators of stunnel, haproxy and nginx expect (issue #12): --check,
--user/--group, sd_notify, process settings in TOML, /metrics and /healthz,
one metrics endpoint for --workers, certificate-expiry and reload metrics,
and signals that reach workers safely however early they come.
"""

from __future__ import annotations

import datetime
import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from tests import pki
from tests.proxy.helpers import (
    TIMEOUT,
    Proxy,
    clientContext,
    connect,
    echo,
    echoRoundTrip,
    runProxy,
)


def freePort() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape(port: int) -> dict:
    """{(sample name, frozenset(labels)): value}."""
    status, body = get(port, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def metricsPort(proxy) -> int:
    return int(re.search(r"address=\S+:(\d+)", proxy.waitFor(r"event=metrics ")[0]).group(1))


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def listenerArgs(pems, backendPort: int = 9) -> list[str]:
    return ["--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{backendPort}", "--cert", pems.cert, "--key",
            pems.key]


# -- --check ----------------------------------------------------------------------------------------


def test_check_passes_without_binding(pems):
    taken = socket.create_server(("127.0.0.1", 0))  # no SO_REUSEPORT: the proxy itself could not listen here
    port = taken.getsockname()[1]
    try:
        args = ["--listen", f"127.0.0.1:{port}", "--backend", "127.0.0.1:9", "--cert", pems.cert,
                "--key", pems.key, "--metrics", f"127.0.0.1:{port}"]
        checked = runProxy(["--check", *args])
        started = runProxy(args)
    finally:
        taken.close()
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "tlsfast proxy: configuration OK (1 listener(s): l0)\n"
    assert checked.stderr == ""
    assert started.returncode == 3  # the same flags, really started: the port is taken


def test_check_reports_every_problem(pems, tmp_path):
    config = tmp_path / "proxy.toml"
    config.write_text(f'''user = "no-such-user-tlsfast"
[[listener]]
name = "web"
listen = "127.0.0.1:0"
backend = "127.0.0.1:8080"
cert = "{pems.cert}"
key = "{pems.otherKey}"

[[listener]]
name = "api"
listen = "127.0.0.1:0"
backend = "backend.invalid:80"
cert = "{pems.cert}"
key = "{pems.key}"

[[listener]]
name = "fine"
listen = "127.0.0.1:0"
backend = "127.0.0.1:80"
cert = "{pems.cert}"
key = "{pems.key}"
''')
    checked = runProxy(["--check", "--config", config])
    assert checked.returncode == 2
    assert checked.stdout == ""
    lines = checked.stderr.splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith("tlsfast proxy: error: ") for line in lines)
    assert "listener api: backend host 'backend.invalid' does not resolve" in lines[0]
    assert "listener web: private key does not match" in lines[1]
    assert "user 'no-such-user-tlsfast' does not exist" in lines[2]


def selfSignedExpired(directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=2))
            .sign(key, hashes.SHA256()))
    files = pki.write_pems(str(directory), {
        "expired-cert": cert.public_bytes(serialization.Encoding.PEM),
        "expired-key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())})
    return files["expired-cert"], files["expired-key"]


def test_check_warns_of_an_expired_certificate(tmp_path):
    cert, key = selfSignedExpired(tmp_path)
    checked = runProxy(["--check", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--cert", cert,
                        "--key", key])
    assert checked.returncode == 0  # served all the same
    assert re.fullmatch(r"tlsfast proxy: warning: listener l0: server certificate \(CN=example.com\) expired on "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\n", checked.stderr), checked.stderr


# -- --user / --group -------------------------------------------------------------------------------


def identity(pid: int) -> dict[str, list[str]]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return {name: fields[name].split() for name in ("Uid", "Gid", "Groups")}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to drop it")
@pytest.mark.parametrize("workers", [1, 2])
def test_user_drops_root_after_binding(pems, start_proxy, backend, workers):
    nobody = pwd.getpwnam("nobody")
    server = backend(echo)
    # --metrics on port 0 and a listener: both bound as root, then root is dropped.
    proxy = start_proxy(*listenerArgs(pems, server.port), "--user", "nobody", "--metrics", "127.0.0.1:0",
                        "--workers", workers, listeners=workers)
    dropped = proxy.waitFor(r"event=privileges_dropped", workers)
    assert all("user=nobody" in line and f"uid={nobody.pw_uid}" in line for line in dropped)
    servers = [proxy.process.pid] if workers == 1 else children(proxy.process.pid)
    assert len(servers) == workers
    for pid in servers:
        assert identity(pid) == {"Uid": [str(nobody.pw_uid)] * 4, "Gid": [str(nobody.pw_gid)] * 4,
                                 "Groups": []}
    if workers > 1:  # the supervisor keeps root, to start a worker again on a privileged port
        assert identity(proxy.process.pid)["Uid"] == ["0"] * 4
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 10_000)
        assert received == sent
    port = metricsPort(proxy)
    assert get(port, "/healthz")[0] == 200
    for _ in range(4):  # with workers: whichever answers reads the other's samples, as nobody
        samples = scrape(port)
        assert sum(value for (name, _), value in samples.items() if name == "tlsfast_proxy_connections_total") == 1
    assert proxy.terminate() == 0


def test_unknown_user_or_group_is_one_line(pems):
    for flag, name, words in (("--user", "no-such-user-tlsfast", "user 'no-such-user-tlsfast' does not exist"),
                              ("--group", "no-such-group-tlsfast", "group 'no-such-group-tlsfast' does not exist")):
        completed = runProxy([*listenerArgs(pems), flag, name])
        assert completed.returncode == 2
        assert completed.stderr == f"tlsfast proxy: error: {words}\n"


def test_user_needs_root(monkeypatch):
    from tlsfast.proxy._config import ProxyConfigError
    from tlsfast.proxy._privileges import resolveIdentity

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ProxyConfigError, match=r"^--user/--group need the proxy to start as root "
                                               r"\(it runs as uid 1000\)$"):
        resolveIdentity("nobody", None)
    assert resolveIdentity("nobody", None, needRoot=False).uid == pwd.getpwnam("nobody").pw_uid  # --check


# -- sd_notify ----------------------------------------------------------------------------------------


class NotifySocket:
    """A service manager's end: a datagram socket that learns who sent each message (SO_PASSCRED)."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.sock.settimeout(TIMEOUT)

    def receive(self) -> tuple[list[str], int]:
        """The next message's lines, and the sender's pid."""
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        [(level, kind, credentials)] = ancillary
        assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
        pid, _, _ = struct.unpack("iII", credentials)
        return data.decode().splitlines(), pid

    def close(self):
        self.sock.close()


@pytest.fixture(params=["abstract", "path"])
def notify_socket(request, tmp_path, monkeypatch):
    if request.param == "abstract":
        name = f"tlsfast-test-notify-{os.getpid()}-{time.monotonic_ns()}"
        receiver, environment = NotifySocket("\0" + name), "@" + name
    else:
        environment = str(tmp_path / "notify")
        receiver = NotifySocket(environment)
    monkeypatch.setenv("NOTIFY_SOCKET", environment)  # the proxy subprocess inherits it
    yield receiver
    receiver.close()


def logTime(line: str) -> float:
    """A log line's timestamp (millisecond precision, rounded down: so at most the real time)."""
    stamp = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize("workers", [1, 2])
def test_sd_notify(pems, start_proxy, notify_socket, workers):
    proxy = start_proxy(*listenerArgs(pems), "--workers", workers, listeners=workers)
    main = proxy.process.pid

    assert notify_socket.receive() == (["READY=1"], main)
    readyAt = time.time()
    assert all(logTime(line) <= readyAt for line in proxy.waitFor(r"event=listening", workers))  # all before

    proxy.process.send_signal(signal.SIGHUP)
    lines, sender = notify_socket.receive()
    assert sender == main
    assert lines[0] == "RELOADING=1"
    [stamp] = [int(line.removeprefix("MONOTONIC_USEC=")) for line in lines[1:]]
    assert 0 <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000 - stamp < TIMEOUT * 1e6
    assert notify_socket.receive() == (["READY=1"], main)
    readyAt = time.time()
    assert all(logTime(line) <= readyAt for line in proxy.waitFor(r"event=reloaded", workers))  # READY after all

    proxy.process.send_signal(signal.SIGTERM)
    assert notify_socket.receive() == (["STOPPING=1"], main)
    assert proxy.wait() == 0


# -- workers and log_level in TOML ----------------------------------------------------------------------


def startWithoutHelper(args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tlsfast", "proxy", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def waitHealthy(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if get(port, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("the proxy did not become healthy")


@pytest.mark.parametrize("flags, workers, infoLines", [
    ([], 2, False),  # from the file: two workers, warnings only
    (["--workers", "1", "--log-level", "info"], 1, True),  # flags win over the file
])
def test_workers_and_log_level_from_toml(pems, tmp_path, flags, workers, infoLines):
    port = freePort()
    config = tmp_path / "proxy.toml"
    config.write_text(f'workers = 2\nlog_level = "warn"\nmetrics = "127.0.0.1:{port}"\n\n[[listener]]\n'
                      f'listen = "127.0.0.1:0"\nbackend = "127.0.0.1:9"\ncert = "{pems.cert}"\n'
                      f'key = "{pems.key}"\n')
    process = startWithoutHelper(["--config", config, *flags])
    try:
        waitHealthy(port, process)
        assert len(children(process.pid)) == (workers if workers > 1 else 0)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0
    assert ("level=info" in stderr) == infoLines, stderr


@pytest.mark.parametrize("text, words", [
    ("workers = 0", "workers must be a whole number, at least 1, not 0"),
    ('workers = "2"', "workers must be a whole number, at least 1, not '2'"),
    ('log_level = "loud"', "log-level 'loud' is not one of debug, info, warn, error"),
    ("user = 5", "user must be a user or group name, not 5"),
])
def test_process_settings_are_checked(pems, tmp_path, text, words):
    config = tmp_path / "proxy.toml"
    config.write_text(f'{text}\n[[listener]]\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:9"\n'
                      f'cert = "{pems.cert}"\nkey = "{pems.key}"\n')
    completed = runProxy(["--config", config])
    assert completed.returncode == 2
    assert completed.stderr == f"tlsfast proxy: error: {words}\n"


# -- /metrics, /healthz ------------------------------------------------------------------------------------


def test_healthz_follows_the_listeners(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy(*listenerArgs(pems, server.port), "--metrics", "127.0.0.1:0", "--drain-timeout", "30")
    port = metricsPort(proxy)
    assert get(port, "/healthz") == (200, b"ok\n")
    assert get(port, "/") [0] == 404
    assert get(port, "/metrics/extra")[0] == 404
    assert get(port, "/metrics")[0] == 200
    with connect(proxy.port, clientContext(pems.ca)) as sock:  # keeps the drain going
        sent, received = echoRoundTrip(sock, 1000)
        assert received == sent
        proxy.process.send_signal(signal.SIGTERM)
        proxy.waitFor(r"event=draining")
        assert get(port, "/healthz")[0] == 503
        assert scrape(port)[("tlsfast_proxy_connections_open", frozenset([("listener", "l0")]))] == 1
        sent, received = echoRoundTrip(sock, 1000)  # still relayed while draining
        assert received == sent
    assert proxy.wait() == 0


def test_one_metrics_endpoint_for_the_workers(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy(*listenerArgs(pems, server.port), "--workers", "2", "--metrics", "127.0.0.1:0",
                        listeners=2)
    addresses = {re.search(r"address=(\S+)", line).group(1) for line in proxy.waitFor(r"event=metrics ", 2)}
    assert len(addresses) == 1  # port 0: one port, chosen once, for the group
    port = int(addresses.pop().rpartition(":")[2])
    connections = 40
    for _ in range(connections):
        with connect(proxy.port, clientContext(pems.ca)) as sock:
            sent, received = echoRoundTrip(sock, 100)
            assert received == sent
    closes = proxy.waitFor(r"event=close ", connections)
    perWorker = {worker: sum(f"worker={worker} " in line for line in closes) for worker in ("0", "1")}
    assert all(perWorker.values())  # the kernel gave each worker some
    for _ in range(6):  # whichever worker answers, the answer is the group's
        samples = scrape(port)
        assert {worker: samples[("tlsfast_proxy_connections_total",
                                 frozenset([("listener", "l0"), ("worker", worker)]))]
                for worker in ("0", "1")} == perWorker
        total = sum(value for (name, _), value in samples.items() if name == "tlsfast_proxy_connections_total")
        assert total == connections
        assert samples[("tlsfast_proxy_worker_up", frozenset([("worker", "0")]))] == 1
        assert samples[("tlsfast_proxy_worker_up", frozenset([("worker", "1")]))] == 1
        assert {dict(labels)["worker"] for (name, labels) in samples
                if name == "process_resident_memory_bytes"} == {"0", "1"}
    assert proxy.terminate() == 0


def expiry(path: str) -> float:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).not_valid_after_utc.timestamp()


def test_certificate_expiry_and_reload_metrics(pems, start_proxy, tmp_path):
    api = pki.leaf("ecdsa", names=("api.example",))
    renewed = pki.leaf("ecdsa", names=("example.com",))
    files = pki.write_pems(str(tmp_path), {"api-cert": api.cert_pem, "api-key": api.key_pem,
                                           "new-cert": renewed.cert_pem, "new-key": renewed.key_pem})
    config = tmp_path / "proxy.toml"

    def write(cert, key):
        config.write_text(f'metrics = "127.0.0.1:0"\n[[listener]]\nname = "web"\nlisten = "127.0.0.1:0"\n'
                          f'backend = "127.0.0.1:9"\ncert = "{cert}"\nkey = "{key}"\n'
                          f'sni_certs = {{ "api.example" = ["{files["api-cert"]}", "{files["api-key"]}"] }}\n')

    write(pems.cert, pems.key)
    proxy = start_proxy("--config", config)
    port = metricsPort(proxy)

    def expiries() -> dict[str, float]:
        return {dict(labels)["certificate"]: value for (name, labels), value in scrape(port).items()
                if name == "tlsfast_proxy_certificate_expiry_timestamp_seconds" and ("listener", "web") in labels}

    def reloads() -> dict[str, float]:
        return {dict(labels)["result"]: value for (name, labels), value in scrape(port).items()
                if name == "tlsfast_proxy_reloads_total"}

    assert expiries() == {pems.cert: expiry(pems.cert), files["api-cert"]: expiry(files["api-cert"])}
    assert reloads() == {"success": 0, "failure": 0}

    write(files["new-cert"], files["new-key"])
    proxy.process.send_signal(signal.SIGHUP)
    proxy.waitFor(r"event=reloaded")
    assert expiries() == {files["new-cert"]: expiry(files["new-cert"]), files["api-cert"]: expiry(files["api-cert"])}
    assert reloads() == {"success": 1, "failure": 0}

    write(files["new-cert"], pems.otherKey)  # a key that does not match: refused, nothing changes
    proxy.process.send_signal(signal.SIGHUP)
    proxy.waitFor(r"event=reload_failed")
    assert reloads() == {"success": 1, "failure": 1}
    assert files["new-cert"] in expiries()


def test_metrics_are_collected_on_the_reactor_thread():
    """
    The collector reads what the reactor thread changes: the endpoint must
    render in the reactor's own turn, not hand the work to a thread pool
    (as prometheus_client's Twisted resource does).
    """
    import threading

    from prometheus_client import CollectorRegistry
    from twisted.web.test.requesthelper import DummyRequest

    from tlsfast.proxy._metricsendpoint import MetricsResource, registryText

    seen = []

    class Recording:
        def collect(self):
            seen.append(threading.current_thread())
            return []

    registry = CollectorRegistry()
    registry.register(Recording())
    resource = MetricsResource(lambda: registryText(registry), lambda: True)
    request = DummyRequest([b"metrics"])
    request.path = b"/metrics"
    body = resource.render_GET(request)
    assert isinstance(body, bytes)  # answered in this turn
    assert seen == [threading.current_thread()]


# -- signals and --workers ----------------------------------------------------------------------------


def test_sighup_storm_right_after_start_kills_no_worker(pems):
    """
    SIGHUP every 5 ms from the moment the supervisor has its handlers: it
    passes each one on to workers that are still importing Twisted.  None
    may die of it (the default action of SIGHUP is to terminate).
    """
    proxy = Proxy(["--log-level", "info", *listenerArgs(pems), "--workers", "2"])
    try:
        proxy.waitFor(r"event=workers ")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and proxy.process.poll() is None:
            proxy.process.send_signal(signal.SIGHUP)
            time.sleep(0.005)
        proxy.waitListening(2)
        assert proxy.waitFor(r"event=reloaded worker=0") and proxy.waitFor(r"event=reloaded worker=1")
        assert not [line for line in proxy.lines if "worker_exited" in line or "worker_failed" in line]
        assert len([line for line in proxy.lines if "event=listening" in line]) == 2  # no restarts
        # The port the supervisor chose for "127.0.0.1:0" stays: each reload updates in place.
        reloads = [line for line in proxy.lines if "event=reloaded" in line]
        assert all("updated=l0" in line and "removed=" not in line for line in reloads), reloads
        with connect(proxy.port, clientContext(pems.ca)) as sock:
            assert sock.version() == "TLSv1.3"  # served (port 9 refuses the relay; the handshake is the check)
    finally:
        status = proxy.terminate()
    assert status == 0
    assert proxy.waitFor(r"event=stopped workers=2")


def test_sigterm_right_after_start_drains_every_worker(pems):
    """A SIGTERM that reaches workers before their reactor runs waits for it: each drains and says so."""
    proxy = Proxy(["--log-level", "info", *listenerArgs(pems), "--workers", "2"])
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(children(proxy.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not [line for line in proxy.lines if "event=listening" in line]  # still starting
        proxy.process.send_signal(signal.SIGTERM)
        assert proxy.wait() == 0
    finally:
        proxy.stop()
    assert proxy.waitFor(r"event=stopped worker=0") and proxy.waitFor(r"event=stopped worker=1")
    assert proxy.waitFor(r"event=stopped workers=2")


def test_sighup_during_a_reload_reads_the_files_once_more():
    """
    A SIGHUP that arrives while a reload is under way is not dropped: the
    files may have changed after that reload read them.  Readiness is
    withdrawn once and given back once, after the last read.
    """
    import io

    from twisted.internet.task import Clock

    from tlsfast.proxy._config import ProxyConfigError
    from tlsfast.proxy._log import Logger
    from tlsfast.proxy._server import ProxyServer

    events = []

    class Notifier:
        def ready(self):
            events.append("ready")

        def reloading(self):
            events.append("reloading")

        def stopping(self):
            events.append("stopping")

    def loadConfig():
        events.append("read")
        if events.count("read") == 1:
            server.reload()  # the second SIGHUP, during the first reload
        raise ProxyConfigError("file not valid (either time)")

    server = ProxyServer(None, Clock(), Logger(stream=io.StringIO()), loadConfig, notifier=Notifier())
    server.reload()
    assert events == ["reloading", "read", "read", "ready"]
    assert server.reloads == {"failure": 2}
    assert not server.reloading
