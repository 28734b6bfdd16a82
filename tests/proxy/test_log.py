"""The proxy's logfmt logger: line format, levels, and flushing once per reactor turn."""

import io

from twisted.internet.task import Clock

from tlsfast.proxy._log import Logger


class CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushes = 0
        self.flushed = ""

    def flush(self):
        self.flushes += 1
        self.flushed = self.getvalue()


def test_line_format_and_quoting():
    stream = CountingStream()
    log = Logger(stream, fields={"worker": 1})
    log("info", "close", conn=7, error="peer said no", empty="", missing=None, raw=b"a\"b")
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    fields = line.split(" ", 1)[1]
    assert fields == 'level=info event=close worker=1 conn=7 error="peer said no" empty="" raw="a\\"b"\n'


def test_below_threshold_is_not_written():
    stream = CountingStream()
    log = Logger(stream, level="warn")
    log("info", "close", conn=1)
    log("warn", "backend_failed", conn=2)
    assert "event=close" not in stream.getvalue()
    assert "event=backend_failed" in stream.getvalue()


def test_flushes_every_line_without_a_reactor():
    stream = CountingStream()
    log = Logger(stream)
    log("info", "a")
    log("info", "b")
    assert stream.flushes == 2
    assert "event=b" in stream.flushed


def test_flushes_once_per_reactor_turn():
    clock, stream = Clock(), CountingStream()
    log = Logger(stream)
    log.flushEachTurn(clock)
    for conn in range(5):
        log("info", "close", conn=conn)
    assert stream.flushes == 0  # written, not yet flushed
    clock.advance(0)
    assert stream.flushes == 1
    assert stream.flushed.count("event=close") == 5
    log("info", "close", conn=5)
    clock.advance(0)
    assert stream.flushes == 2 and "conn=5" in stream.flushed


def test_back_to_flushing_every_line_after_the_reactor_stops():
    clock, stream = Clock(), CountingStream()
    log = Logger(stream)
    log.flushEachTurn(clock)
    log("info", "draining")
    log.flushEachTurn(None)  # what serve() does once reactor.run() returns
    assert "event=draining" in stream.flushed
    log("info", "stopped")
    assert "event=stopped" in stream.flushed
