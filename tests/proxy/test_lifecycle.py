"""Several listeners from a TOML file, max-connections, and draining on SIGTERM."""

import pytest

from tests.proxy.helpers import clientContext, connect, echo, echoRoundTrip, serverContext


def test_toml_two_listeners(pems, start_proxy, backend, tmp_path):
    plain = backend(echo)
    tls = backend(echo, serverContext(pems.backendCert, pems.backendKey))
    config = tmp_path / "proxy.toml"
    config.write_text(f"""
[[listener]]
name = "front"
listen = "127.0.0.1:0"
backend = "127.0.0.1:{plain.port}"
mode = "terminate"
cert = "{pems.cert}"
key = "{pems.key}"

[[listener]]
name = "out"
listen = "127.0.0.1:0"
backend = "127.0.0.1:{tls.port}"
mode = "originate"
backend_ca = "{pems.ca}"
backend_name = "backend.example"
""")
    proxy = start_proxy("--config", config, listeners=2)
    with connect(proxy.ports["front"], clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 256 * 1024)
        assert received == sent
    with connect(proxy.ports["out"]) as sock:
        sent, received = echoRoundTrip(sock, 256 * 1024)
        assert received == sent
    assert (plain.accepted, tls.accepted) == (1, 1)


def test_max_connections_pauses_accepting(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--max-connections", "1")
    first = connect(proxy.port, clientContext(pems.ca))
    proxy.waitFor(r"event=max_connections")
    second = connect(proxy.port)  # the kernel completes it; the proxy must not accept it yet
    # Several reactor turns pass during a round trip on the first connection.
    for _ in range(3):
        sent, received = echoRoundTrip(first, 1024)
        assert received == sent
    assert len(proxy.waitFor(r"event=accept", 0)) == 1
    first.unwrap()
    first.close()
    proxy.waitFor(r"event=accept", 2)
    with clientContext(pems.ca).wrap_socket(second, server_hostname="example.com") as second:
        sent, received = echoRoundTrip(second, 1024)
        assert received == sent
    assert server.accepted == 2


def test_sigterm_drains_open_connections(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--drain-timeout", "15")
    sock = connect(proxy.port, clientContext(pems.ca))
    sent, received = echoRoundTrip(sock, 64 * 1024)
    assert received == sent
    proxy.process.terminate()  # SIGTERM
    proxy.waitFor(r"event=draining connections=1")
    try:
        refused = connect(proxy.port)
    except ConnectionRefusedError:
        refused = None
    assert refused is None, "still accepting after SIGTERM"
    # The open connection keeps working until its client closes it.
    sent, received = echoRoundTrip(sock, 64 * 1024)
    assert received == sent
    sock.unwrap()
    sock.close()
    assert proxy.wait() == 0
    assert proxy.waitFor(r"event=stopped aborted=0")


def test_sigterm_drain_deadline_cuts_connections(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--drain-timeout", "0.2")
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 1024)
        assert received == sent
        proxy.process.terminate()
        assert proxy.wait() == 0
        assert proxy.waitFor(r"event=stopped aborted=1")
        with pytest.raises(OSError):  # reset (or TLS EOF without close_notify): cut, not closed
            sock.recv(1)


def test_idle_timeout_closes_both_sides(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--idle-timeout", "0.3")
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 1024)
        assert received == sent
        assert sock.recv(1) == b""  # close_notify (suppress_ragged_eofs=False), then nothing
    assert proxy.waitFor(r"event=close .*by=idle_timeout")


def test_handshake_timeout(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--handshake-timeout", "0.3")
    with connect(proxy.port) as sock:  # TCP only: never starts the handshake
        try:
            assert sock.recv(1) == b""
        except ConnectionResetError:
            pass
    line = proxy.waitFor(r"event=close ")[0]
    assert "by=handshake_failed" in line and "handshake" in line.split("error=")[1].lower()
    assert server.accepted == 0


def test_traffic_through_the_compiled_relay_keeps_the_connection_alive(pems, start_proxy, backend):
    """
    Bytes relayed in compiled code count as activity: a connection that
    talks every 0.15 s outlives a 0.5 s idle timeout, then idles out once
    it stops.
    """
    import time

    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--idle-timeout", "0.5")
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        for _ in range(12):  # 1.8 s in all
            sent, received = echoRoundTrip(sock, 1024)
            assert received == sent
            time.sleep(0.15)
        assert not [line for line in proxy.lines if "event=close" in line]
        assert sock.recv(1) == b""  # now idle: close_notify, then nothing
    assert proxy.waitFor(r"event=close .*by=idle_timeout")
