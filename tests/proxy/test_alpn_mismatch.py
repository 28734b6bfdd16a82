"""
ALPN without overlap (RFC 7301 section 3.2): the client gets alert 120
no_application_protocol, and the proxy's close line and handshake-failure
metric say alpn_mismatch -- not an internal error.
"""

import ssl

import pytest

from tests.proxy.helpers import clientContext, connect, echo
from tests.proxy.hostile import parseLogfmt
from tests.proxy.test_operations import metricsPort, scrape
from tlsfast.options import NoApplicationProtocol
from tlsfast.proxy._metrics import handshakeFailureReason


def test_the_reason_is_named():
    assert handshakeFailureReason(NoApplicationProtocol([b"h2"], [b"http/1.1"]), False) == "alpn_mismatch"


def test_client_offering_only_h2(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--alpn", "http/1.1",
                        "--metrics", "127.0.0.1:0", "--log-level", "info")
    with pytest.raises(ssl.SSLError, match="alert no application protocol"):  # alert 120
        connect(proxy.port, clientContext(pems.ca, alpn=["h2"]))
    [close] = proxy.waitFor(r"event=close ")
    fields = parseLogfmt(close)
    assert (fields["by"], fields["failure"]) == ("handshake_failed", "alpn_mismatch")
    samples = scrape(metricsPort(proxy))
    assert samples[("tlsfast_proxy_handshake_failures_total",
                    frozenset([("listener", "l0"), ("reason", "alpn_mismatch")]))] == 1
    assert server.accepted == 0
    with connect(proxy.port, clientContext(pems.ca, alpn=["h2", "http/1.1"])) as sock:  # overlap: fine
        assert sock.selected_alpn_protocol() == "http/1.1"
        sock.sendall(b"ok")
        assert sock.recv(2) == b"ok"
