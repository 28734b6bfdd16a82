"""Flow control: a slow reader must not make the proxy buffer what the writer sends."""

import hashlib
import os
import time

from tests.proxy.helpers import TIMEOUT, clientContext, connect

MiB = 1024 * 1024
TOTAL = 64 * MiB
BLOCK = os.urandom(MiB)


def source(sock):
    for _ in range(TOTAL // MiB):
        sock.sendall(BLOCK)


def test_slow_reader_keeps_proxy_memory_bounded(pems, start_proxy, backend):
    server = backend(source)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    expected = hashlib.sha256(BLOCK * (TOTAL // MiB)).hexdigest()
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        received = hashlib.sha256()
        count = 0
        first = sock.recv(65536)
        received.update(first)
        count += len(first)
        baseline = peak = proxy.rssBytes()
        deadline = time.monotonic() + 3 * TIMEOUT
        while count < TOTAL and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received.update(chunk)
            count += len(chunk)
            peak = max(peak, proxy.rssBytes())
            # The backend writes as fast as loopback allows; this reader is
            # far slower, so without back-pressure the proxy would hold most
            # of the 64 MiB.
            time.sleep(0.001)
    assert count == TOTAL and received.hexdigest() == expected
    assert peak - baseline < 16 * MiB, f"proxy RSS grew by {(peak - baseline) / MiB:.1f} MiB"
