"""
The close line's cost: its logfmt values are rendered in one regex pass
(only values that need quoting or escaping go one by one), exactly as the
per-value rendering would write them.
"""

import io

from hypothesis import given
from hypothesis import strategies as st

from tlsfast.bench.phases import PhaseProfiler
from tlsfast.proxy._lifecycle import Reason
from tlsfast.proxy._log import Logger, _logfmtPairs, _value

CLOSE_FIELDS = dict(
    listener="main", conn=17, by=Reason.CLIENT, aborted=None, failure=None,
    error="Connection to the other side was lost in a non-clean fashion: Connection lost.",
    client="127.0.0.1:5555", sni="example.com", tls_version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384",
    alpn=b"h2", resumed=False, client_cert=None, backend="127.0.0.1:80", backend_error=None,
    seconds="0.003", bytes_from_client=1, bytes_from_backend=1)


def _calls(function) -> int:
    profiler = PhaseProfiler()
    profiler.start()
    try:
        function()
    finally:
        profiler.stop()
    return sum(profiler.calls.values())


def test_close_line_python_calls():
    """A close line costs a few calls, not four or more per field (55 when each value was rendered alone)."""
    log = Logger(io.StringIO(), fields={"worker": 1})
    log("info", "close", **CLOSE_FIELDS)  # (first line: the per-second time stamp)
    assert _calls(lambda: log("info", "close", **CLOSE_FIELDS)) <= 35


values = st.one_of(
    st.text(), st.binary(), st.integers(), st.booleans(), st.sampled_from(list(Reason)),
    st.text(alphabet=st.sampled_from(' "=\\\x00\x01\n\x7fa-:\u202e\udc80'), max_size=6))


@given(st.lists(values, max_size=8))
def test_same_as_each_value_alone(fieldValues):
    fields = [(f"k{i}", value) for i, value in enumerate(fieldValues)]
    assert _logfmtPairs(fields) == [f"{key}={_value(value)}" for key, value in fields]


def test_line_with_values_to_quote_and_escape():
    stream = io.StringIO()
    Logger(stream)("info", "close", a="", b="x y", c="ok", d=b"\xff", e="\x00", f="=")
    assert stream.getvalue().split(" ", 3)[3] == 'a="" b="x y" c=ok d="\\xff" e="\\x00" f="="\n'
