"""The proxy's logger: line format (logfmt or JSON), escaping, levels, and flushing once per reactor turn."""

import io
import json

import pytest
from twisted.internet.task import Clock

from tests.proxy.helpers import Proxy, echo
from tests.proxy.hostile import close, parseLogfmt, roundTrip, tlsClient
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


# -- peer-derived values: escaped, never raw (log injection) --------------------

HOSTILE = [
    ("a\r\nlevel=error event=forged", r'"a\r\nlevel=error event=forged"'),
    ("\x1b[31mred\x1b[0m", r'"\x1b[31mred\x1b[0m"'),
    ("tab\there", r'"tab\there"'),
    ("nul\x00del\x7f", r'"nul\x00del\x7f"'),
    ("c1\x85\x9b", r'"c1\x85\x9b"'),  # NEL, CSI
    ("\u202eevil\u2028next", r'"\u202eevil\u2028next"'),  # bidi override, line separator
    ("\udcc3(", r'"\xc3("'),  # a byte that was not UTF-8 (surrogateescape)
    (b"raw\xff\r", r'"raw\xff\r"'),
    ('back\\slash "quoted"', r'"back\\slash \"quoted\""'),
]


@pytest.mark.parametrize("value, written", HOSTILE)
def test_control_characters_are_escaped(value, written):
    stream = CountingStream()
    Logger(stream)("info", "close", sni=value, conn=1)
    line = stream.getvalue()
    assert line.count("\n") == 1 and line.endswith(" conn=1\n")
    assert f" sni={written} " in line
    assert line[:-1].isprintable()
    assert parseLogfmt(line[:-1])["conn"] == "1"


def test_printable_unicode_stays_readable():
    stream = CountingStream()
    Logger(stream)("info", "close", sni="bücher.example")
    assert " sni=bücher.example" in stream.getvalue()


def test_json_format_same_fields_one_object_per_line():
    stream = CountingStream()
    log = Logger(stream, fields={"worker": 2}, format="json")
    for value, _ in HOSTILE:
        log("info", "close", conn=7, sni=value, resumed=False, missing=None, ratio=0.5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(HOSTILE)
    for line, (value, written) in zip(lines, HOSTILE):
        assert line.isascii() and line.isprintable()
        record = json.loads(line)
        assert list(record) == ["time", "level", "event", "worker", "conn", "sni", "resumed", "ratio"]
        assert (record["level"], record["event"], record["worker"], record["conn"]) == ("info", "close", 2, 7)
        assert record["resumed"] is False and record["ratio"] == 0.5
        assert record["sni"].isprintable()  # decoded: still nothing a terminal acts on
        if "\\" not in written[1:-1].replace("\\\\", "").replace('\\"', ""):
            assert record["sni"] == value


def test_json_escapes_like_logfmt():
    stream = CountingStream()
    Logger(stream, format="json")("info", "close", sni="a\r\x1b\udcff")
    assert json.loads(stream.getvalue())["sni"] == r"a\r\x1b\xff"


def test_unknown_format():
    with pytest.raises(ValueError, match="xml"):
        Logger(CountingStream(), format="xml")


# -- end to end: a client's SNI ------------------------------------------------------------

def test_sni_with_control_characters(pems, start_proxy, backend):
    server = backend(echo)
    proxy = start_proxy("--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}",
                        "--cert", pems.cert, "--key", pems.key, "--log-level", "info")
    connection = tlsClient(proxy.port, b"a\r\n2026-01-01T00:00:00.000Z level=error event=forged\x1b[2J\tb\x7f\xc3")
    assert roundTrip(connection, b"ping") == b"ping"
    close(connection)
    [closeLine] = proxy.waitFor(r"event=close ")
    assert not any("event=forged" in line and "sni=" not in line for line in proxy.lines)
    assert r' sni="a\r\n2026-01-01T00:00:00.000Z level=error event=forged\x1b[2J\tb\x7f\xc3" ' in closeLine
    assert parseLogfmt(closeLine)["by"] == "client"
    proxy.terminate()
    for line in proxy.lines:
        parseLogfmt(line)


def test_json_from_the_command_line(pems, start_proxy, backend):
    server = backend(echo)
    proxy = Proxy(["--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{server.port}", "--cert", pems.cert,
                   "--key", pems.key, "--log-level", "info", "--log-format", "json"])
    try:
        [listening] = proxy.waitFor(r'"event":"listening"')
        port = json.loads(listening)["address"].rpartition(":")[2]
        connection = tlsClient(int(port), b"x\x1b.example")
        assert roundTrip(connection, b"ping") == b"ping"
        close(connection)
        [closeLine] = proxy.waitFor(r'"event":"close"')
    finally:
        proxy.stop()
    record = json.loads(closeLine)
    assert record["sni"] == r"x\x1b.example" and record["by"] == "client"
    assert all(json.loads(line) for line in proxy.lines)


def test_json_from_every_worker(pems):
    proxy = Proxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9", "--cert", pems.cert, "--key", pems.key,
                   "--log-level", "info", "--log-format", "json", "--workers", "2"])
    try:
        listening = proxy.waitFor(r'"event":"listening"', 2)
    finally:
        proxy.terminate()
    assert sorted(json.loads(line)["worker"] for line in listening) == [0, 1]
    assert all(json.loads(line) for line in proxy.lines)
