"""
Server names in one normal form (A-label, lowercase, no trailing dot), for
configured names and clients' SNI alike, and the one lookup that
ServerOptions and the proxy's SNI routes share.
"""

from __future__ import annotations

import pytest

from tests import pki
from tlsfast.options import ConfigurationError, ServerOptions
from tlsfast.options._servername import (
    InvalidServerName,
    ServerNameMap,
    normalizePattern,
    normalizeServerName,
    serverNameKey,
)


@pytest.mark.parametrize("name, normal", [
    ("example.com", "example.com"),
    ("EXAMPLE.Com.", "example.com"),
    ("Bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.EXAMPLE.", "xn--bcher-kva.example"),
    ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
    ("bücher.example".encode(), "xn--bcher-kva.example"),  # raw UTF-8 from a client
    ("b\udcc3\udcbccher.example", "xn--bcher-kva.example"),  # the same, decoded with surrogateescape
    ("_acme-challenge.example.com", "_acme-challenge.example.com"),  # DNS has underscores; IDNA refuses them
    ("x" * 63 + ".example", "x" * 63 + ".example"),
])
def test_normal_form(name, normal):
    assert normalizeServerName(name) == normal


@pytest.mark.parametrize("name", [
    "", ".", "a..b", "x" * 64 + ".example", "-a.example", "a b.example", "a\r.example", "a/b",
    b"\xff\xfe.example", "\udcff.example", ("a" * 60 + ".") * 5, "xn--.example\u0301", "a\u200e.example",
])
def test_not_a_host_name(name):
    with pytest.raises(InvalidServerName):
        normalizeServerName(name)
    assert serverNameKey(name) is None


def test_patterns():
    assert normalizePattern(" *.Bücher.Example. ") == "*.xn--bcher-kva.example"
    for bad in ("a.*.example", "*", "**.example", "*example.com"):
        with pytest.raises(InvalidServerName):
            normalizePattern(bad)


def test_lookup_exact_then_one_label_wildcard():
    names = ServerNameMap({"Exact.Example": 1, "*.Bücher.example": 2, "*.example": 3})
    assert names.lookup(b"exact.example.") == 1
    assert names.lookup("EXACT.EXAMPLE") == 1
    assert names.lookup(b"shop.xn--bcher-kva.example") == 2
    assert names.lookup("shop.bücher.example".encode()) == 2
    assert names.lookup(b"other.example") == 3
    assert names.lookup(b"a.b.other.example") is None  # one label only (RFC 6125)
    assert names.lookup(b"a..example") is None
    assert names.lookup(None) is None and names.lookup(b"") is None
    assert sorted(names.values()) == [1, 2, 3] and names and not ServerNameMap()


class _Connection:
    """What ServerOptions' SNI callback uses of an SSL.Connection."""

    def __init__(self, serverName: bytes | None) -> None:
        self.serverName = serverName
        self.context = None

    def get_servername(self) -> bytes | None:
        return self.serverName

    def set_context(self, context) -> None:
        self.context = context


def test_server_options_use_the_same_lookup():
    default = pki.leaf("ecdsa", names=("default.test",))
    idn = pki.leaf("ecdsa", names=("xn--bcher-kva.example",))
    options = ServerOptions(default.certificate, default.key,
                            serverNames={"Bücher.Example.": (idn.cert_pem, idn.key_pem)})
    [context] = options._serverNames.values()
    for sent in (b"xn--bcher-kva.example", b"XN--BCHER-KVA.EXAMPLE.", "bücher.example".encode()):
        connection = _Connection(sent)
        options._selectServerName(connection)
        assert connection.context is context, sent
    for sent in (b"other.example", b"a..b", b"\xff", None):
        connection = _Connection(sent)
        options._selectServerName(connection)
        assert connection.context is None, sent


def test_server_options_refuse_a_bad_name():
    default = pki.leaf("ecdsa", names=("default.test",))
    with pytest.raises(ConfigurationError, match="a..b"):
        ServerOptions(default.certificate, default.key, serverNames={"a..b": (default.cert_pem, default.key_pem)})
