import pytest

from tests.proxy.helpers import Backend, Proxy, writePEMs


@pytest.fixture
def pems(tmp_path):
    return writePEMs(str(tmp_path))


@pytest.fixture
def start_proxy():
    """Start ``tlsfast proxy ARGS`` and wait for its listeners; killed at teardown."""
    proxies = []

    def start(*args, listeners=1):
        proxy = Proxy([str(a) for a in args])
        proxies.append(proxy)
        return proxy.waitListening(listeners)

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def backend():
    """Start a threaded backend; closed at teardown."""
    backends = []

    def start(handler, context=None):
        server = Backend(handler, context)
        backends.append(server)
        return server

    yield start
    for server in backends:
        server.close()
