"""
``tlsfast bench proxy``: `tlsfast proxy` side by side with haproxy, stunnel
and hitch (and the same proxy on stock Twisted TLS), terminate mode over
loopback.

    tlsfast bench proxy [--rounds 5] [--seconds 2] [--quick]
        [--markdown FILE] [--json FILE] [--scenarios bulk1,bulk16,...]
        [--contenders tlsfast,stock,haproxy,stunnel,hitch] [--profile DIR]

Contenders (all: the same ECDSA P-256 certificate for example.com, TLS 1.3,
TLS_AES_128_GCM_SHA256 and X25519, one process on one core):

    tlsfast    python -m tlsfast proxy (one worker, the tlsfast engine)
    stock      the same proxy with TLSFAST_DISABLE=1 (stock Twisted TLS)
    haproxy    haproxy -db, nbthread 1, mode tcp, ssl on the bind line
    stunnel    stunnel4, foreground, one service
    hitch      hitch, foreground, one worker

haproxy, stunnel and hitch take part when installed; the run names the
missing ones and leaves them out (``make bench-proxy`` installs them first).

Scenarios:

    bulk1 / bulk16   client -> proxy -> discard backend, 256 KiB TLS writes on
                     1 or 16 connections; MiB/s counted at the backend
    handshake        new connections/s: 16 concurrent full TLS 1.3 handshakes
                     (no session reuse, no certificate verification; a
                     pyOpenSSL client, cheaper than stdlib ssl) each followed by a 1-byte echo through the
                     backend, then close
    rr1 / rr16       64-byte request -> 64-byte echo, 1 or 16 connections;
                     requests/s and per-request p50/p99 latency
    idle             RSS growth of the proxy process(es) for N open TLS
                     connections (handshake done, backend connected, 1-byte
                     echo), per connection

The proxy runs pinned to CPU 0; the load generator and the backend (both from
bench/proxy_loadgen.py, the same for every contender) on CPU 1.  Each
scenario runs ``--rounds`` rounds; a round runs every contender once, in a
rotated order; each run starts a fresh proxy and backend.  Reported: medians
over rounds, proxy CPU (utime+stime of the process tree from /proc) per
operation, proxy capacity per core (operations per proxy CPU second), ratios
vs haproxy, and the load generator's own CPU share (close to 100 % means the
load generator, not the proxy, set the rate).

``--profile DIR``: additionally run the tlsfast proxy once under cProfile for
bulk16, handshake and rr1 and print the top entries (files in DIR).

The load generator and backends are :mod:`tlsfast.bench.proxy_loadgen`.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from tlsfast._cliutil import OneLineParser
from tlsfast.bench.certs import write_pki
from tlsfast.bench.tlsconfig import TLSParams, write_openssl_conf

PY = sys.executable
# started by path, as the runner starts its load generator: no tlsfast import in it
LOADGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy_loadgen.py")
PARAMS = TLSParams()
SUITE, GROUP = PARAMS.cipher, PARAMS.group
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1 << 20

CONTENDERS = ("tlsfast", "stock", "haproxy", "stunnel", "hitch")
EXTERNAL = ("haproxy", "stunnel", "hitch")  # taken from the system when installed
SCENARIOS = ("bulk1", "bulk16", "handshake", "rr1", "rr16", "idle")
PROXY_CPU, LOAD_CPU = "0", "1"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------ /proc helpers

def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def cpu_seconds(pids) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def rss_bytes(pids) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_busy() -> dict[str, tuple[int, int]]:
    """Per CPU (busy, total) jiffies from /proc/stat; busy includes irq/softirq/steal."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *fields = line.split()
                v = [int(x) for x in fields[:8]]
                idle = v[3] + v[4]
                out[name[3:]] = (sum(v) - idle, sum(v))
    return out


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not listening on {port} after {timeout}s")


# ------------------------------------------------------------ availability

def executable(name: str) -> str | None:
    """The program that runs contender ``name``, or None when it is not installed."""
    if name == "stunnel":
        return shutil.which("stunnel4") or shutil.which("stunnel")
    if name in EXTERNAL:
        return shutil.which(name)
    return PY


def available(name: str) -> bool:
    return executable(name) is not None


def versions() -> dict:
    v = {"python": sys.version.split()[0]}
    for name, cmd in (("haproxy", ["haproxy", "-v"]), ("stunnel", [executable("stunnel") or "stunnel", "-version"]),
                      ("hitch", ["hitch", "--version"])):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            v[name] = (r.stdout + r.stderr).strip().splitlines()[0 if name == "haproxy" else -1]
            if name == "stunnel":
                v[name] = " / ".join(line.strip() for line in (r.stdout + r.stderr).splitlines()
                                     if line.startswith(("stunnel", "Compiled", "Running")))
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    try:
        import tlsfast
        v["tlsfast"] = getattr(tlsfast, "__version__", "?")
    except Exception:  # noqa: BLE001 - a version that cannot be read is left out of the record
        pass
    return v


# ------------------------------------------------------------ contenders

class Proxy:
    """One contender process (tree) pinned to PROXY_CPU, listening on self.port."""

    def __init__(self, name: str, work: str, backend_port: int, run_id: str, profile: str | None = None):
        self.name, self.work, self.port = name, work, free_port()
        self.logfile = os.path.join(work, f"{run_id}-{name}.log")
        env = dict(os.environ, OPENSSL_CONF=os.path.join(work, "openssl.cnf"))
        pki = os.path.join(work, "pki")
        cert, key = os.path.join(pki, "server.pem"), os.path.join(pki, "server.key")
        if name in ("tlsfast", "stock"):
            if name == "stock":
                env["TLSFAST_DISABLE"] = "1"
            else:
                env.pop("TLSFAST_DISABLE", None)
            prof = ["-m", "cProfile", "-o", profile] if profile else []
            cmd = [PY, *prof, "-m", "tlsfast", "proxy", "--listen", f"127.0.0.1:{self.port}",
                   "--backend", f"127.0.0.1:{backend_port}", "--cert", cert, "--key", key,
                   "--drain-timeout", "0", "--idle-timeout", "3600", "--max-connections", "100000"]
        elif name == "haproxy":
            cfg = os.path.join(work, f"{run_id}-haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(f"""global
    nbthread 1
    maxconn 9000
    ssl-default-bind-ciphersuites {SUITE}
    ssl-default-bind-options ssl-min-ver TLSv1.3
defaults
    mode tcp
    maxconn 9000
    timeout connect 10s
    timeout client 1h
    timeout server 1h
frontend fe
    bind 127.0.0.1:{self.port} ssl crt {os.path.join(pki, 'combined.pem')} curves {GROUP}
    default_backend be
backend be
    server s1 127.0.0.1:{backend_port}
""")
            cmd = ["haproxy", "-db", "-f", cfg]
        elif name == "stunnel":
            cfg = os.path.join(work, f"{run_id}-stunnel.conf")
            with open(cfg, "w") as f:
                f.write(f"""foreground = yes
pid =
syslog = no
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
[bench]
accept = 127.0.0.1:{self.port}
connect = 127.0.0.1:{backend_port}
cert = {cert}
key = {key}
sslVersionMin = TLSv1.3
ciphersuites = {SUITE}
curves = {GROUP}
TIMEOUTidle = 3600
TIMEOUTclose = 0
""")
            cmd = [executable("stunnel") or "stunnel", cfg]
        elif name == "hitch":
            cfg = os.path.join(work, f"{run_id}-hitch.conf")
            # as root, hitch must be told which user its worker runs as
            user = 'user = "root"\ngroup = "root"\n' if os.geteuid() == 0 else ""
            with open(cfg, "w") as f:
                f.write(f"""frontend = "[127.0.0.1]:{self.port}"
backend = "[127.0.0.1]:{backend_port}"
pem-file = "{os.path.join(pki, 'combined.pem')}"
workers = 1
daemon = off
syslog = off
tls-protos = TLSv1.3
ciphersuites = "{SUITE}"
ecdh-curve = "{GROUP}"
{user}""")
            cmd = [executable("hitch") or "hitch", "--config", cfg]
        else:
            raise ValueError(name)
        self.logf = open(self.logfile, "wb")
        self.proc = subprocess.Popen(["taskset", "-c", PROXY_CPU, *cmd], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT, cwd=work)
        try:
            if name in ("tlsfast", "stock"):
                self._wait_log()
            else:
                wait_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise

    def _wait_log(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        want = "accelerated=True" if self.name == "tlsfast" else "accelerated=False"
        while time.monotonic() < end:
            with open(self.logfile, errors="replace") as f:
                text = f.read()
            for line in text.splitlines():
                if "event=listening" in line:
                    if want not in line:
                        raise RuntimeError(f"{self.name}: expected {want}: {line}")
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {text[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no listening line after {timeout}s")

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def cpu(self) -> float:
        # taskset exec()s the proxy, so proc.pid is the proxy itself
        return cpu_seconds(self.pids())

    def rss(self) -> int:
        return rss_bytes(self.pids())

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


class Backend:
    def __init__(self):
        self.proc = subprocess.Popen(["taskset", "-c", LOAD_CPU, PY, LOADGEN, "backend"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "PORTS":
            raise RuntimeError(f"backend did not start: {line}")
        self.discard, self.echo, self.control = map(int, line[1:])
        self.ctl = socket.create_connection(("127.0.0.1", self.control))
        self.ctlf = self.ctl.makefile("r")

    def stats(self) -> dict:
        self.ctl.sendall(b"stats\n")
        return json.loads(self.ctlf.readline())

    def stop(self) -> None:
        self.ctl.close()
        self.proc.kill()
        self.proc.wait()


def client(kind: str, port: int, work: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, OPENSSL_CONF=os.path.join(work, "openssl.cnf"))
    return subprocess.Popen(["taskset", "-c", LOAD_CPU, PY, LOADGEN, "client", kind, "--port", str(port),
                             "--ca", os.path.join(work, "pki", "ca.pem"), *extra],
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, env=env)


# ------------------------------------------------------------ one run

def _sample(proxy: Proxy, backend: Backend, cl: subprocess.Popen) -> dict:
    return {"t": time.monotonic(), "proxy_cpu": proxy.cpu(), "backend": backend.stats(),
            "client_cpu": cpu_seconds([cl.pid]), "cpus": cpu_busy()}


def run_timed(kind: str, scenario: str, proxy: Proxy, backend: Backend, work: str, args) -> dict:
    """Run a client with MARK start/end; sample the proxy and the backend at each mark."""
    common = ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    if kind == "bulk":
        cl = client("bulk", proxy.port, work, "--connections", str(args.bulk_connections[scenario]), *common)
    elif kind == "rr":
        cl = client("rr", proxy.port, work, "--connections", str(args.rr_connections[scenario]),
                    "--size", "64", *common)
    else:
        cl = client("handshake", proxy.port, work, "--no-verify", "--concurrency", str(args.concurrency), *common)
    assert cl.stdout is not None and cl.stdin is not None  # client() pipes both
    marks, result = {}, None
    deadline = time.monotonic() + args.seconds + args.warmup + 60
    for line in cl.stdout:
        if line.startswith("MARK "):
            marks[line.split()[1]] = _sample(proxy, backend, cl)
        elif line.startswith("RESULT "):
            result = json.loads(line[7:])
        if time.monotonic() > deadline:
            break
    cl.stdin.close()
    try:
        cl.wait(20)
    except subprocess.TimeoutExpired:
        cl.kill()
        cl.wait()
    if "start" not in marks or "end" not in marks or result is None:
        raise RuntimeError(f"{scenario}: client failed (rc={cl.returncode}, marks={list(marks)})")
    a, b = marks["start"], marks["end"]
    wall = b["t"] - a["t"]
    pcpu = b["proxy_cpu"] - a["proxy_cpu"]
    bcpu = b["backend"]["cpu"] - a["backend"]["cpu"]
    ccpu = b["client_cpu"] - a["client_cpu"]
    def busy(cpu):
        (b0, t0), (b1, t1) = a["cpus"][cpu], b["cpus"][cpu]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    rec = {"wall": wall, "proxy_cpu": pcpu, "cpu0_busy": busy(PROXY_CPU), "cpu1_busy": busy(LOAD_CPU), "proxy_util": pcpu / wall, "client_util": ccpu / wall,
           "backend_util": bcpu / wall, "loadgen_util": (ccpu + bcpu) / wall,
           "tls_version": result.get("version"), "cipher": result.get("cipher")}
    if kind == "bulk":
        nbytes = b["backend"]["discard_bytes"] - a["backend"]["discard_bytes"]
        ops = nbytes / MiB
        rec.update(rate=ops / wall, unit="MiB/s", mib=ops, cpu_per_op_us=pcpu / ops * 1e6 if ops else None,
                   client_errors=result.get("errors"))
    elif kind == "rr":
        ops = result["requests"]
        rec.update(rate=ops / wall, unit="req/s", requests=ops, cpu_per_op_us=pcpu / ops * 1e6 if ops else None,
                   p50_us=result["p50_us"], p99_us=result["p99_us"], p999_us=result["p999_us"],
                   max_us=result["max_us"])
    else:
        ops = result["handshakes"]
        rec.update(rate=ops / wall, unit="conn/s", handshakes=ops,
                   backend_accepts=b["backend"]["echo_accepts"] - a["backend"]["echo_accepts"],
                   cpu_per_op_us=pcpu / ops * 1e6 if ops else None, client_errors=result.get("errors"))
    rec["capacity_per_core"] = ops / pcpu if pcpu > 0 else None
    return rec


def run_idle(proxy: Proxy, backend: Backend, work: str, args) -> dict:
    # Warm-up: 50 connections opened and closed, so first-use allocations are not counted.
    warm = client("idle", proxy.port, work, "--connections", "50")
    assert warm.stdout is not None and warm.stdin is not None  # client() pipes both
    warm.stdout.readline()
    warm.stdin.write("close\n")
    warm.stdin.flush()
    warm.communicate(timeout=60)
    time.sleep(0.5)
    before = proxy.rss()
    cl = client("idle", proxy.port, work, "--connections", str(args.idle_connections))
    assert cl.stdout is not None and cl.stdin is not None
    line = cl.stdout.readline()
    if not line.startswith("MARK opened"):
        cl.kill()
        raise RuntimeError(f"idle: client failed: {line!r}")
    opened = json.loads(line.split(" ", 2)[2])
    time.sleep(1.0)
    after = proxy.rss()
    pids = len(proxy.pids())
    cl.stdin.write("close\n")
    cl.stdin.flush()
    rest, _ = cl.communicate(timeout=120)
    result = json.loads(rest.split("RESULT ", 1)[1]) if "RESULT " in rest else {}
    n = args.idle_connections
    per = (after - before) / n
    return {"rss_before": before, "rss_after": after, "bytes_per_conn": per, "rate": per / 1024,
            "unit": "KiB/conn", "connections": n, "open_seconds": opened["seconds"], "alive": result.get("alive"),
            "processes": pids, "tls_version": opened.get("version"), "cipher": opened.get("cipher")}


def one_run(scenario: str, name: str, round_no: int, work: str, args, profile: str | None = None) -> dict:
    backend = Backend()
    proxy = None
    try:
        target = backend.discard if scenario.startswith("bulk") else backend.echo
        proxy = Proxy(name, work, target, f"{scenario}-r{round_no}", profile)
        if scenario == "idle":
            rec = run_idle(proxy, backend, work, args)
        else:
            rec = run_timed("bulk" if scenario.startswith("bulk") else "rr" if scenario.startswith("rr")
                            else "handshake", scenario, proxy, backend, work, args)
        if proxy.proc.poll() is not None:
            raise RuntimeError(f"{name} died during the run (rc={proxy.proc.returncode}); log {proxy.logfile}")
        return rec
    finally:
        if proxy is not None:
            rc = proxy.stop()
            if rc not in (0, None, -signal.SIGTERM, 143) and name != "haproxy":
                log(f"  note: {name} exit status {rc} (log {proxy.logfile})")
        backend.stop()


# ------------------------------------------------------------ reporting

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) < 10 and digits == 0:
        return f"{v:.2f}"
    return f"{v:,.{digits}f}"


TITLES = {
    "bulk1": "Bulk throughput, 1 connection (client -> proxy -> discard backend, 256 KiB writes)",
    "bulk16": "Bulk throughput, 16 connections",
    "handshake": "New TLS connections/s (16 concurrent, full TLS 1.3 handshake + 1-byte echo + close)",
    "rr1": "Small request/response, 64 B, 1 connection",
    "rr16": "Small request/response, 64 B, 16 connections",
    "idle": "Memory per idle TLS connection",
}
OPS = {"bulk1": "MiB", "bulk16": "MiB", "handshake": "conn", "rr1": "req", "rr16": "req"}


def summarize(scenario: str, runs: dict[str, list[dict]], contenders) -> dict:
    summary = {}
    for name in contenders:
        rs = [r for r in runs.get(name, []) if "error" not in r]
        if not rs:
            continue
        s = {"n": len(rs), "rate": med([r["rate"] for r in rs])}
        for key in ("cpu_per_op_us", "capacity_per_core", "proxy_util", "client_util", "loadgen_util",
                    "cpu0_busy", "cpu1_busy",
                    "backend_util", "p50_us", "p99_us", "p999_us", "bytes_per_conn"):
            if any(key in r for r in rs):
                s[key] = med([r.get(key) for r in rs])
        summary[name] = s
    return summary


def pct(v) -> str:
    return "-" if v is None else f"{v * 100:.0f} %"


def table(scenario: str, summary: dict) -> str:
    h = summary.get("haproxy")

    def ratio(name, key, invert=False):
        if not h or h.get(key) in (None, 0) or summary[name].get(key) is None:
            return "-"
        return f"{summary[name][key] / h[key]:.2f}"

    lines = [f"### {TITLES[scenario]}", ""]
    if scenario == "idle":
        lines += ["| contender | RSS per idle connection | vs haproxy | runs |", "| --- | ---: | ---: | ---: |"]
        for name, s in summary.items():
            lines.append(f"| {name} | {s['bytes_per_conn'] / 1024:,.1f} KiB | {ratio(name, 'bytes_per_conn')} | {s['n']} |")
        return "\n".join(lines) + "\n"
    op = OPS[scenario]
    unit = {"MiB": "MiB/s", "conn": "conn/s", "req": "req/s"}[op]
    head = (f"| contender | {unit} | vs haproxy | proxy CPU µs/{op} | {op}/s per proxy core | vs haproxy "
            f"| proxy CPU | loadgen CPU | CPU0 / CPU1 busy |")
    sep = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if scenario.startswith("rr"):
        head += " p50 µs | p99 µs | p99 vs haproxy |"
        sep += " ---: | ---: | ---: |"
    lines += [head, sep]
    for name, s in summary.items():
        row = (f"| {name} | {fmt(s['rate'], 1 if op == 'MiB' else 0)} | {ratio(name, 'rate')} "
               f"| {fmt(s.get('cpu_per_op_us'), 1)} | {fmt(s.get('capacity_per_core'), 0)} "
               f"| {ratio(name, 'capacity_per_core')} | {s['proxy_util'] * 100:.0f} % | {s['loadgen_util'] * 100:.0f} % "
               f"| {pct(s.get('cpu0_busy'))} / {pct(s.get('cpu1_busy'))} |")
        if scenario.startswith("rr"):
            row += f" {fmt(s.get('p50_us'), 0)} | {fmt(s.get('p99_us'), 0)} | {ratio(name, 'p99_us')} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def targets(summaries: dict) -> str:
    """The issue's targets for tlsfast (rate and per-core capacity both shown)."""
    rows = ["### Targets (tlsfast vs haproxy / stunnel; medians)", "",
            "| target | measured | per proxy core | met |", "| --- | ---: | ---: | :---: |"]

    def get(sc, name, key):
        return summaries.get(sc, {}).get(name, {}).get(key)

    def check(label, sc, key, cmp, bound, vs="haproxy"):
        t, o = get(sc, "tlsfast", key), get(sc, vs, key)
        cap_t, cap_o = get(sc, "tlsfast", "capacity_per_core"), get(sc, vs, "capacity_per_core")
        if t is None or not o:
            return
        r = t / o
        capr = cap_t / cap_o if (cap_t and cap_o and key == "rate") else None
        ok = (r >= bound) if cmp == ">=" else (r <= bound)
        rows.append(f"| {label} | {r:.2f} × {vs} | {f'{capr:.2f} ×' if capr else '-'} | {'yes' if ok else 'NO'} |")

    for sc in ("bulk1", "bulk16"):
        check(f"{sc}: throughput ≥ 0.8 × haproxy", sc, "rate", ">=", 0.8)
    check("handshake: new conn/s ≥ 0.8 × haproxy", "handshake", "rate", ">=", 0.8)
    for sc in ("rr1", "rr16"):
        check(f"{sc}: p99 ≤ 1.5 × haproxy", sc, "p99_us", "<=", 1.5)
    for sc in ("bulk1", "bulk16", "handshake"):
        check(f"{sc}: ahead of stunnel", sc, "rate", ">=", 1.0, "stunnel")
    for sc in ("rr1", "rr16"):
        check(f"{sc}: p99 ahead of stunnel", sc, "p99_us", "<=", 1.0, "stunnel")
    check("idle: memory ≤ 2 × haproxy", "idle", "bytes_per_conn", "<=", 2.0)
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------ profile

def profile(work: str, args, directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    text = ["## cProfile of the tlsfast proxy (one run each; profiling overhead inflates Python time)", ""]
    for scenario in ("bulk16", "handshake", "rr1"):
        path = os.path.join(directory, f"tlsfast-{scenario}.prof")
        log(f"profile {scenario} -> {path}")
        try:
            rec = one_run(scenario, "tlsfast", 0, work, args, profile=path)
        except Exception as e:  # noqa: BLE001 - a failed profile run is reported, the others go on
            text.append(f"{scenario}: failed: {e}\n")
            continue
        text.append(f"### {scenario}: {rec['rate']:,.1f} {rec['unit']} under cProfile, "
                    f"proxy CPU {rec['cpu_per_op_us']:.1f} µs/op\n")
        for order in ("tottime", "cumulative"):
            import io
            buf = io.StringIO()
            st = pstats.Stats(path, stream=buf)
            st.strip_dirs().sort_stats(order).print_stats(18)
            body = buf.getvalue()
            body = body[body.find("   ncalls"):] if "   ncalls" in body else body
            text += [f"by {order}:", "", "```", body.rstrip(), "```", ""]
    return "\n".join(text)


# ------------------------------------------------------------ main

def _names(what: str, allowed: tuple[str, ...]):
    """An argparse type: a comma-separated list of ``allowed`` names, duplicates dropped."""
    def names(text: str) -> list[str]:
        chosen = list(dict.fromkeys(name for name in text.split(",") if name))
        for name in chosen:
            if name not in allowed:
                raise argparse.ArgumentTypeError(f"unknown {what} {name!r} (choose from {', '.join(allowed)})")
        return chosen
    return names


def parser() -> OneLineParser:
    """``tlsfast bench proxy``'s options."""
    p = OneLineParser(prog="tlsfast bench proxy", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="measured seconds per run (after --warmup)")
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--quick", action="store_true", help="smoke check: 1 round, 0.5 s, 200 idle connections")
    p.add_argument("--contenders", type=_names("contender", CONTENDERS), default=list(CONTENDERS),
                   help=f"comma-separated, from {', '.join(CONTENDERS)} (default: all installed)")
    p.add_argument("--scenarios", type=_names("scenario", SCENARIOS), default=list(SCENARIOS),
                   help=f"comma-separated, from {', '.join(SCENARIOS)} (default: all)")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent handshakes")
    p.add_argument("--idle-connections", type=int, default=1000)
    p.add_argument("--idle-rounds", type=int, default=3, help="rounds for idle (it varies little; default 3)")
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--profile", metavar="DIR", help="also profile the tlsfast proxy under cProfile")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    return p


def main(argv=None) -> int:
    return run(parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the comparison ``args`` (from :func:`parser`) ask for."""
    if args.quick:
        args.rounds, args.seconds, args.warmup, args.idle_connections = 1, 0.5, 0.2, 200
    args.bulk_connections = {"bulk1": 1, "bulk16": 16}
    args.rr_connections = {"rr1": 1, "rr16": 16}

    contenders = args.contenders
    missing = [c for c in contenders if not available(c)]
    if missing:
        log(f"not installed, left out: {', '.join(missing)}")
        contenders = [c for c in contenders if c not in missing]
    if not contenders:
        log("tlsfast bench proxy: error: none of the contenders is installed")
        return 3
    scenarios = args.scenarios
    if (os.cpu_count() or 1) < 2:
        log("warning: fewer than 2 CPUs; proxy and load generator share one")

    work = tempfile.mkdtemp(prefix="proxy-compare-")
    write_openssl_conf(work, PARAMS)
    os.makedirs(os.path.join(work, "pki"))
    paths = write_pki(os.path.join(work, "pki"))
    with open(os.path.join(work, "pki", "combined.pem"), "wb") as f:
        f.write(open(paths["server.pem"], "rb").read() + open(paths["server.key"], "rb").read())

    raw: dict = {"meta": {"versions": versions(), "rounds": args.rounds, "seconds": args.seconds,
                          "warmup": args.warmup, "idle_connections": args.idle_connections,
                          "concurrency": args.concurrency, "suite": SUITE, "group": GROUP,
                          "proxy_cpu": PROXY_CPU, "loadgen_cpu": LOAD_CPU, "started": time.time(),
                          "loadavg_start": os.getloadavg(), "contenders": contenders, "missing": missing},
                 "runs": {}}
    summaries = {}
    started = time.monotonic()
    try:
        for scenario in scenarios:
            runs: dict[str, list[dict]] = {c: [] for c in contenders}
            for rnd in range(min(args.rounds, args.idle_rounds) if scenario == "idle" else args.rounds):
                order = contenders[rnd % len(contenders):] + contenders[:rnd % len(contenders)]
                for name in order:
                    for attempt in (1, 2):  # the proxy is edited concurrently: retry once
                        try:
                            rec = one_run(scenario, name, rnd, work, args)
                            break
                        except Exception as e:  # noqa: BLE001 - a failed run is retried, then recorded
                            log(f"  {scenario} round {rnd} {name}: attempt {attempt} failed: {e}")
                            rec = {"error": str(e)}
                    rec.update(round=rnd, contender=name, scenario=scenario)
                    runs[name].append(rec)
                    if "error" not in rec:
                        extra = (f" p50 {rec['p50_us']:.0f} µs p99 {rec['p99_us']:.0f} µs" if "p99_us" in rec else "")
                        cpu = (f" cpu/op {rec['cpu_per_op_us']:.1f} µs proxy {rec['proxy_util'] * 100:.0f}% "
                               f"loadgen {rec['loadgen_util'] * 100:.0f}% cpu0/1 busy {pct(rec['cpu0_busy'])}"
                               f"/{pct(rec['cpu1_busy'])}" if "cpu_per_op_us" in rec else "")
                        log(f"  {scenario} r{rnd} {name:8s} {rec['rate']:10,.1f} {rec['unit']}{cpu}{extra}")
            raw["runs"][scenario] = runs
            summaries[scenario] = summarize(scenario, runs, contenders)
        raw["summary"] = summaries
        raw["meta"]["elapsed"] = time.monotonic() - started
        raw["meta"]["loadavg_end"] = os.getloadavg()
        md = [f"## tlsfast proxy vs {' vs '.join(c for c in contenders if c != 'tlsfast')} "
              f"(terminate, loopback, {SUITE}, {GROUP})", "",
              *([f"Not installed, left out: {', '.join(missing)}.", ""] if missing else []),
              f"Proxy on CPU {PROXY_CPU}, load generator + backend on CPU {LOAD_CPU}; medians of "
              f"{args.rounds} round(s) of {args.seconds:g} s; versions: "
              + "; ".join(f"{k} {v}" for k, v in raw["meta"]["versions"].items()), "",
              "\"per proxy core\" = operations per second of proxy CPU time (capacity of one core); "
              "\"loadgen CPU\" = client + backend process CPU share of their core; \"CPU0 / CPU1 busy\" = "
              "whole-core busy share from /proc/stat incl. softirq (loopback TCP work lands there "
              "and in no process's time; CPU1 near 100 %: the load generator limited the rate).", ""]
        for scenario in scenarios:
            md.append(table(scenario, summaries[scenario]))
        if "haproxy" in contenders and "tlsfast" in contenders:
            md.append(targets(summaries))
        if args.profile:
            md.append(profile(work, args, args.profile))
        text = "\n".join(md)
        print(text)
        if args.markdown:
            os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
            with open(args.markdown, "w") as f:
                f.write(text)
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(raw, f, indent=1)
    finally:
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
