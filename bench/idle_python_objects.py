"""
Python objects per idle proxy connection, by source line: runs
``tlsfast proxy`` (terminate mode, threaded echo backend) with tracemalloc
started by a ``sitecustomize`` hook that dumps a snapshot on SIGUSR2, opens
N idle TLS connections (handshake + 1 B echo) between two snapshots and
prints the difference per connection (docs/benchmarks.md, "Proxy idle
memory").  Run from the checkout:

    .venv/bin/python bench/idle_python_objects.py [connections]
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.getcwd())
from tests.proxy.helpers import Backend, Proxy, clientContext, connect, echo, writePEMs

_HOOK = '''
import os, signal, tracemalloc
tracemalloc.start(12)
_dumps = [0]
def _dump(signum, frame):
    _dumps[0] += 1
    tracemalloc.take_snapshot().dump(f"{os.environ['TLSFAST_SNAPSHOT']}.{_dumps[0]}")
signal.signal(signal.SIGUSR2, _dump)
'''


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    directory = tempfile.mkdtemp(prefix="tlsfast-idle-")
    with open(os.path.join(directory, "sitecustomize.py"), "w") as hook:
        hook.write(_HOOK)
    os.environ["PYTHONPATH"] = directory
    os.environ["TLSFAST_SNAPSHOT"] = snapshot = os.path.join(directory, "snapshot")
    pems = writePEMs(directory)
    backend = Backend(echo)
    proxy = Proxy(["--log-level", "info", "--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{backend.port}",
                   "--cert", pems.cert, "--key", pems.key]).waitListening()
    context = clientContext(pems.ca)
    sockets = []

    def openIdle(n: int) -> None:
        for _ in range(n):
            sock = connect(proxy.port, context)
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            sockets.append(sock)

    try:
        openIdle(50)    # warm-up: first-connection caches
        for name in ("1", "2"):
            if name == "2":
                openIdle(count)
            time.sleep(1)
            proxy.process.send_signal(signal.SIGUSR2)
            while not os.path.exists(f"{snapshot}.{name}"):
                time.sleep(0.1)
            time.sleep(1)   # the dump is written
        ignore = [tracemalloc.Filter(False, "*tracemalloc*"), tracemalloc.Filter(False, "<frozen importlib*")]
        before = tracemalloc.Snapshot.load(f"{snapshot}.1").filter_traces(ignore)
        after = tracemalloc.Snapshot.load(f"{snapshot}.2").filter_traces(ignore)
        total = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        print(f"Python objects per idle connection: {total / count:.0f} B ({count} connections)")
        for stat in after.compare_to(before, "lineno")[:25]:
            frame = stat.traceback[0]
            where = frame.filename.split("site-packages/")[-1].split(os.getcwd() + "/")[-1]
            print(f"{stat.size_diff / count:7.0f} B  {stat.count_diff / count:5.2f} blocks  {where}:{frame.lineno}")
    finally:
        for sock in sockets:
            sock.close()
        proxy.stop()


if __name__ == "__main__":
    main()
