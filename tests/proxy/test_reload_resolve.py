"""
A reload checks that backend names resolve (getaddrinfo, which blocks) off
the reactor thread: connections go on being served meanwhile.
"""

import signal
import time

from tests.proxy.helpers import TIMEOUT, clientContext, connect, echo

# Loaded into the proxy process (sitecustomize): resolving slow.test takes
# SLOW seconds and says when it starts.
SLOW = 4.0
SITECUSTOMIZE = f'''
import os, socket, time
_real = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host == "slow.test":
        open(os.environ["SLOW_RESOLVE_MARK"], "w").close()
        time.sleep({SLOW})
        host = "127.0.0.1"
    return _real(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
'''


def test_slow_resolution_during_reload_does_not_stall_connections(pems, start_proxy, backend, tmp_path,
                                                                 monkeypatch):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    mark = tmp_path / "resolving"
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    monkeypatch.setenv("SLOW_RESOLVE_MARK", str(mark))
    server = backend(echo)
    config = tmp_path / "proxy.toml"
    listener = (f'[[listener]]\nname = "web"\nlisten = "127.0.0.1:0"\nbackend = "127.0.0.1:{server.port}"\n'
                f'cert = "{pems.cert}"\nkey = "{pems.key}"\n')
    config.write_text(listener)
    proxy = start_proxy("--config", config)
    config.write_text(listener + f'routes = {{ "r.example" = "slow.test:{server.port}" }}\n')
    proxy.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + TIMEOUT
    while not mark.exists():
        assert time.monotonic() < deadline, "the reload never resolved slow.test"
        time.sleep(0.01)
    started = time.monotonic()
    with connect(proxy.ports["web"], clientContext(pems.ca)) as sock:
        sock.sendall(b"during the reload")
        assert sock.recv(100) == b"during the reload"
    assert time.monotonic() - started < SLOW / 2
    assert "updated=web" in proxy.waitFor(r"event=reloaded")[0]  # and the reload still completes
