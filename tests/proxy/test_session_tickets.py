"""TLS 1.3 session tickets at the proxy: how many, and resumable by every worker."""

import re
import socket
import ssl

import pytest

from tests.proxy.helpers import TIMEOUT, clientContext, echo, echoRoundTrip
from tlsfast._foreign.ticketcontrol import ticketControl

pytestmark = pytest.mark.skipif(ticketControl() is None, reason="ticket count and keys cannot be set here")


def handshake(port, context, session=None):
    """One connection with C{session} offered; (resumed?, the session it ends with, tickets seen)."""
    tickets = []

    def callback(conn, direction, version, contentType, msgType, data):
        if direction == "read" and msgType == ssl._TLSMessageType.NEWSESSION_TICKET:
            tickets.append(msgType)

    context._msg_callback = callback  # CPython's own tests count messages this way
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    with context.wrap_socket(raw, server_hostname="example.com", session=session) as sock:
        sent, received = echoRoundTrip(sock, 100)  # the tickets arrive with the first reply
        assert received == sent
        return sock.session_reused, sock.session, len(tickets)


def start(start_proxy, pems, server, *extra, workers=1):
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--workers", str(workers), *extra,
                        listeners=workers)
    return proxy


def test_everyWorkerResumesEveryWorkersTickets(pems, start_proxy, backend):
    # The kernel spreads connections over the workers: with a key per worker
    # about half of these resumptions would fail.
    proxy = start(start_proxy, pems, backend(echo), workers=2)
    [port] = {int(re.search(r"address=\S+:(\d+)", line).group(1))
              for line in proxy.waitFor(r"event=listening", 2)}
    context = clientContext(pems.ca)
    resumed, session, tickets = handshake(port, context)
    assert not resumed and tickets == 2
    for _ in range(16):
        resumed, session, _ = handshake(port, context, session)
        assert resumed
    workers = {re.search(r"worker=(\d)", line).group(1) for line in proxy.waitFor(r"event=accept ", 17)}
    assert workers == {"0", "1"}


def test_sessionTicketsSetsTheCount(pems, start_proxy, backend):
    proxy = start(start_proxy, pems, backend(echo), "--session-tickets", "1")
    context = clientContext(pems.ca)
    resumed, session, tickets = handshake(proxy.port, context)
    assert tickets == 1
    assert handshake(proxy.port, context, session)[0]


def test_noTicketsNoResumption(pems, start_proxy, backend):
    proxy = start(start_proxy, pems, backend(echo), "--session-tickets", "0")
    context = clientContext(pems.ca)
    resumed, session, tickets = handshake(proxy.port, context)
    assert tickets == 0 and not resumed
    assert not handshake(proxy.port, context, session)[0]
