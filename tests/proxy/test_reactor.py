"""
The proxy's reactor (tlsfast/proxy/_reactor.py) and the bridge from
Twisted's log to the proxy's: events dispatched, an escaping exception
reported and the loop kept going, Twisted's fallback chosen by environment.
"""

import io
import os

import pytest
from twisted.logger import Logger as TwistedLogger
from twisted.python.failure import Failure

from tests.proxy.helpers import clientContext, connect, echo, echoRoundTrip
from tests.twisted.test_epollreactor import PipeReader
from tlsfast.proxy import _reactor
from tlsfast.proxy._log import Logger, twistedObserver

needsReactor = pytest.mark.skipif(not _reactor.AVAILABLE, reason="this Twisted's epoll reactor differs")


@pytest.fixture
def proxyReactor(pipes):
    # (Depends on pipes so that it is torn down first, while the fds are open.)
    reactor = _reactor.ProxyReactor()
    yield reactor
    reactor.removeAll()
    reactor._poller.close()


@pytest.fixture
def pipes():
    opened = []

    def make():
        r, w = os.pipe()
        opened.extend((r, w))
        return r, w

    yield make
    for fd in opened:
        try:
            os.close(fd)
        except OSError:
            pass


@needsReactor
def test_dispatches_ready_descriptors(proxyReactor, pipes):
    r, w = pipes()
    reader = PipeReader(r)
    proxyReactor.addReader(reader)
    os.write(w, b"x")
    proxyReactor.doPoll(1)
    assert reader.reads == 1
    proxyReactor.doPoll(0)  # nothing more to read
    assert reader.reads == 1


@needsReactor
def test_an_escaping_exception_is_reported_and_the_others_still_run(proxyReactor, pipes, monkeypatch):
    """
    A handler that raises: Twisted's _doReadOrWrite disconnects it with the
    error; a second ready descriptor in the same poll is still handled.
    """
    (r1, w1), (r2, w2) = pipes(), pipes()
    bad, good = PipeReader(r1, fail=True), PipeReader(r2)
    monkeypatch.setattr("twisted.python.log.err", lambda *a, **kw: None)  # _doReadOrWrite reports it
    proxyReactor.addReader(bad)
    proxyReactor.addReader(good)
    os.write(w1, b"x")
    os.write(w2, b"x")
    proxyReactor.doPoll(1)
    assert bad.reads == 1 and good.reads == 1
    assert bad.lost is not None and bad.lost.check(ValueError)
    assert bad not in proxyReactor.getReaders()


@needsReactor
def test_an_exception_from_connectionLost_is_logged_not_raised(proxyReactor, pipes, monkeypatch):
    r, w = pipes()

    class Broken(PipeReader):
        def connectionLost(self, reason):
            raise RuntimeError("bug in connectionLost")

    broken = Broken(r, fail=True)
    errors = []
    # (twisted.python.log.err: also what _doReadOrWrite reports the doRead error with.)
    monkeypatch.setattr(_reactor.log, "err", lambda *args: errors.append((Failure(), args)))
    proxyReactor.addReader(broken)
    os.write(w, b"x")
    proxyReactor.doPoll(1)  # must not raise
    ours = [(failure, args) for failure, args in errors if len(args) == 2 and "I/O event handler" in args[1]]
    assert len(ours) == 1
    failure, (_, why) = ours[0]
    assert failure.check(RuntimeError) and "Broken" in why


def test_unavailable_when_asked_for_twisteds(monkeypatch):
    monkeypatch.setenv("TLSFAST_PROXY_REACTOR", "twisted")
    assert not _reactor._available()


@needsReactor
def test_the_proxy_runs_on_it(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    assert "reactor=ProxyReactor" in proxy.waitFor(r"event=listening")[0]
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 1024 * 1024)
        assert received == sent


def test_the_proxy_runs_on_twisteds_reactor_when_asked(pems, start_proxy, backend, monkeypatch):
    monkeypatch.setenv("TLSFAST_PROXY_REACTOR", "twisted")
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key)
    line = proxy.waitFor(r"event=listening")[0]
    assert "reactor=ProxyReactor" not in line and "reactor=" in line
    with connect(proxy.port, clientContext(pems.ca)) as sock:
        sent, received = echoRoundTrip(sock, 1024 * 1024)
        assert received == sent


# -- Twisted's log into the proxy's -------------------------------------------

def observed():
    stream = io.StringIO()
    return stream, TwistedLogger(observer=twistedObserver(Logger(stream)))


def test_errors_with_tracebacks_reach_the_log():
    stream, twistedLog = observed()
    try:
        raise ValueError("boom")
    except ValueError:
        twistedLog.failure("Unhandled error in {what}", what="a callback")
    line = stream.getvalue()
    assert line.count("\n") == 1  # one line: the traceback's newlines are escaped
    assert "level=error event=twisted" in line
    assert 'message="Unhandled error in a callback"' in line
    assert 'error="ValueError: boom"' in line
    assert "Traceback" in line and "test_errors_with_tracebacks_reach_the_log" in line


def test_warnings_pass_and_chatter_does_not():
    stream, twistedLog = observed()
    twistedLog.info("Starting factory {f}", f="x")
    twistedLog.debug("noise")
    assert stream.getvalue() == ""
    twistedLog.warn("something odd")
    assert 'level=warn event=twisted message="something odd"' in stream.getvalue()
