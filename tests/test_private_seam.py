"""
The seam (tlsfast/_foreign/) is the only place touching private names of
Twisted, pyOpenSSL and cryptography: the scan (tests/privatescan.py) finds
none anywhere else in tlsfast/, each form it looks for is caught, and each
seam module's import-time check reports a missing name and makes its callers
fall back to stock behaviour.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest
from OpenSSL import SSL

import tlsfast
import tlsfast.twisted
from tests.privatescan import foreignPrivateNames, scanPackage, scanSource
from tlsfast._foreign import (
    Surface,
    cryptobinding,
    pyopenssl,
    twistedepoll,
    twistedsslverify,
    twistedtcp,
    twistedtls,
)

ROOT = Path(__file__).resolve().parent.parent


def scan(snippet: str, ownNames=()) -> list[str]:
    violations = scanSource(textwrap.dedent(snippet), "snippet.py", foreignPrivateNames(), ownNames=ownNames)
    return [violation.what for violation in violations]


def test_noPrivateForeignAccessOutsideTheSeam():
    assert [str(v) for v in scanPackage(ROOT, "tlsfast", "tlsfast._foreign")] == []


def test_theSeamItselfWouldFail():
    """The scan sees the seam's own private uses (so the test above can fail)."""
    found = scanPackage(ROOT, "tlsfast", "tlsfast._nothing")
    files = {violation.path for violation in found}
    assert {"tlsfast/_foreign/twistedtls.py", "tlsfast/_foreign/pyopenssl.py",
            "tlsfast/_foreign/twistedtcp.py", "tlsfast/_foreign/twistedepoll.py",
            "tlsfast/_foreign/cryptobinding.py", "tlsfast/_foreign/twistedsslverify.py"} <= files


@pytest.mark.parametrize("snippet, expected", [
    ("from twisted.internet._sslverify import ClientTLSOptions",
     "imports from private module twisted.internet._sslverify"),
    ("from twisted.internet import _sslverify", "imports private name twisted.internet._sslverify"),
    ("import OpenSSL._util as u", "imports private module OpenSSL._util"),
    ("from cryptography.hazmat.bindings._rust import _openssl",
     "imports private name cryptography.hazmat.bindings._rust._openssl"),
    ("from twisted.internet.endpoints import _WrapperEndpoint",
     "imports private name twisted.internet.endpoints._WrapperEndpoint"),
    ("def f(context):\n    return context._context", "private foreign attribute ._context"),
    ("def f(connection):\n    return connection._ssl", "private foreign attribute ._ssl"),
    ("from twisted.protocols import tls\nx = tls._AggregateSmallWrites",
     "private foreign attribute ._AggregateSmallWrites"),
    ("from OpenSSL import SSL\nx = getattr(SSL.Connection, '_reverse_mapping', None)",
     "getattr() of private foreign attribute _reverse_mapping"),
    ("from twisted.internet import tcp\nclass C(tcp.Server):\n    def f(self):\n        return self._aborting",
     "self._aborting belongs to a foreign base class"),
    ("from twisted.internet import tcp\nclass C(tcp.Connector):\n    def _makeTransport(self):\n        pass",
     "overrides _makeTransport of a foreign base class"),
    # Assigned in the foreign base's methods (makeConnection), not a class attribute:
    ("from twisted.protocols.tls import TLSMemoryBIOProtocol as P\n"
     "class C(P):\n    def f(self):\n        return self._tlsConnection",
     "self._tlsConnection belongs to a foreign base class"),
])
def test_eachFormIsCaught(snippet, expected):
    assert expected in scan(snippet)


@pytest.mark.parametrize("snippet", [
    "class C:\n    def f(self):\n        self._buffer = []\n        return self._buffer",  # our own state
    "def f(sample):\n    return sample._replace(labels={})",  # namedtuple's public API
    "from twisted.internet import tcp\nx = tcp.Server.write",  # public foreign names
    "from tlsfast._foreign import pyopenssl\nx = pyopenssl.sslPointer",
])
def test_ownAndPublicNamesPass(snippet):
    assert scan(snippet) == []


def test_aNameOurModuleDefinesIsOurs():
    """C{peer._buffer} in a module whose own class defines C{_buffer} (as Twisted's aggregator does)."""
    snippet = "def f(peer):\n    return peer._buffer"
    assert scan(snippet) == ["private foreign attribute ._buffer"]
    assert scan(snippet, ownNames={"_buffer"}) == []


# -- each seam module's check, and the fallback it selects --------------------

def failing(module, monkeypatch) -> Surface:
    """Re-run C{module}'s check (something was patched away) and make it current."""
    surface = module.check()
    monkeypatch.setattr(module, "SURFACE", surface)
    return surface


def test_everySurfaceIsUsableHere():
    for module in (cryptobinding, pyopenssl, twistedtls, twistedsslverify, twistedtcp, twistedepoll):
        assert module.SURFACE.problems == [], module.__name__


def test_surfacesListsEveryCheckOfEveryModule():
    """tlsfast info reports each check, the separately checked ones (MORE_SURFACES) too."""
    from tlsfast._foreign import surfaces

    listed = surfaces()
    assert twistedtcp.CONNECT_SURFACE in listed and twistedtcp.SURFACE in listed
    assert all(surface.problems == [] for surface in listed), [s.problems for s in listed]


def test_versionOutsideTheTestedRange(monkeypatch):
    monkeypatch.delenv("TLSFAST_ALLOW_UNTESTED", raising=False)
    surface = Surface("x", "Twisted", ((1, 0), (2, 0))).require()
    assert surface.problems and "outside the tested range" in surface.problems[0]
    monkeypatch.setenv("TLSFAST_ALLOW_UNTESTED", "1")
    assert Surface("x", "Twisted", ((1, 0), (2, 0))).require().usable


def test_cryptobindingReportsAMissingName(monkeypatch):
    from cryptography.hazmat.bindings._rust import _openssl

    monkeypatch.delattr(_openssl, "lib")
    assert any("lib" in problem for problem in cryptobinding.check().problems)


def test_pyopensslMissingReverseMappingFallsBack(monkeypatch):
    context = SSL.Context(SSL.TLS_METHOD)
    connection = SSL.Connection(context, None)  # (before: pyOpenSSL itself needs the map)
    monkeypatch.delattr(SSL.Connection, "_reverse_mapping")
    surface = failing(pyopenssl, monkeypatch)
    assert any("_reverse_mapping" in problem for problem in surface.problems)
    assert pyopenssl.installFilteredInfoCallback(context, SSL.SSL_CB_HANDSHAKE_DONE, print) is False
    with pytest.raises(NotImplementedError):
        pyopenssl.sslPointer(connection)


def test_twistedTLSMissingMethodFallsBackToStock(monkeypatch):
    """
    A private method of Twisted's TLS protocol gone: no engine is bound, and
    install() leaves Twisted alone with one warning naming it.
    """
    from twisted.protocols import tls

    monkeypatch.delattr(tls.TLSMemoryBIOProtocol, "_flushSendBIO")
    surface = failing(twistedtls, monkeypatch)
    assert any("_flushSendBIO" in problem for problem in surface.problems)
    connection = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
    assert twistedtls.engineFor(connection) is None
    monkeypatch.setattr(tlsfast.twisted, "_warned", False)
    stock = tls.TLSMemoryBIOFactory
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tlsfast.twisted.install() is False
    assert [w.category for w in caught] == [tlsfast.twisted.TLSFastUnavailableWarning]
    assert "_flushSendBIO" in str(caught[0].message)
    assert tls.TLSMemoryBIOFactory is stock


def test_twistedTLSUnusableStillConnects(monkeypatch):
    """With the surface failing, tlsfast's classes run Twisted's own code."""
    from twisted.internet.testing import StringTransport
    from twisted.protocols import tls

    from tests.twisted.tlshelpers import Recorder, RecordingFactory, clientOptions, serverOptions

    monkeypatch.setattr(twistedtls, "SURFACE", Surface("t", "Twisted", ((0, 0), (99, 0)), ["broken"]))
    sides = []
    for isClient, options in ((True, clientOptions()), (False, serverOptions())):
        factory = twistedtls.TLSMemoryBIOFactory(options, isClient, RecordingFactory(Recorder))
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        assert protocol.getEngine() is None
        assert type(protocol._aggregator) is tls._AggregateSmallWrites  # Twisted's, not ours
        sides.append(protocol)
    client, server = sides
    for _ in range(10):
        for sender, receiver in ((client, server), (server, client)):
            data = sender.transport.value()
            sender.transport.clear()
            if data:
                receiver.dataReceived(data)
    assert client.wrappedProtocol.completedHandshake and server.wrappedProtocol.completedHandshake


def test_sslverifyMissingNameKeepsTwistedsALPN(monkeypatch):
    from twisted.internet import _sslverify

    monkeypatch.delattr(_sslverify, "protosFromProtocol")
    surface = failing(twistedsslverify, monkeypatch)
    assert any("protosFromProtocol" in problem for problem in surface.problems)
    before = _sslverify.setupForALPN
    from tlsfast.twisted._alpn import installALPNFix

    assert installALPNFix() is False
    assert _sslverify.setupForALPN is before


def test_sslverifyUnusableRefusesATwistedTrustRoot(monkeypatch):
    from twisted.internet.ssl import trustRootFromCertificates

    from tests.twisted.tlshelpers import caCertificate
    from tlsfast.options import ClientOptions, ConfigurationError

    monkeypatch.setattr(twistedsslverify, "SURFACE", Surface("s", "Twisted", ((0, 0), (99, 0)), ["broken"]))
    with pytest.raises(ConfigurationError, match="trustRoot cannot be used"):
        ClientOptions("example.com", trustRoot=trustRootFromCertificates([caCertificate()]))


def test_tcpMissingNameKeepsTwistedsWrites(monkeypatch):
    from twisted.internet import tcp

    monkeypatch.setattr(tcp.Port, "transport", object)
    surface = failing(twistedtcp, monkeypatch)
    assert any("Port.transport" in problem for problem in surface.problems)
    assert twistedtcp.installEagerWrites() is False
    assert tcp.Port.transport is object and tcp.Client is twistedtcp.StockClient

    class Recording:
        def connectTCP(self, *args, **kwargs):
            self.called = (args, kwargs)
            return "stock connector"

        def addReader(self, reader):
            raise AssertionError("not a reactor this test drives")

    reactor = Recording()
    assert twistedtcp.connectTCP(reactor, "127.0.0.1", 1, object(), 5) == "stock connector"
    assert twistedtcp.useEagerServers(tcp.Port(0, object())) is False


def test_installWithoutEagerWritesSurface(monkeypatch):
    """install(eagerWrites=True) still installs TLS, warns, and leaves Twisted's TCP writes."""
    from twisted.internet import tcp

    if not tlsfast.ACCELERATED:
        pytest.skip("tlsfast engine unavailable")
    monkeypatch.setattr(twistedtcp, "SURFACE", Surface("tcp", "Twisted", ((0, 0), (99, 0)), ["tcp: broken"]))
    stockServer = tcp.Port.transport
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert tlsfast.twisted.install(eagerWrites=True) is True
    finally:
        tlsfast.twisted.uninstall()
    assert [str(w.message) for w in caught if w.category is tlsfast.twisted.TLSFastUnavailableWarning] == [
        "tlsfast eager writes unavailable (tcp: broken); TCP transports keep Twisted's writes"]
    assert tcp.Port.transport is stockServer


def test_epollMissingNameInstallsNoReactor(monkeypatch):
    if twistedepoll.EPollReactor is None:
        pytest.skip("no epoll here")
    owner = next(cls for cls in twistedepoll.EPollReactor.__mro__ if "_doReadOrWrite" in vars(cls))
    monkeypatch.delattr(owner, "_doReadOrWrite")
    surface = failing(twistedepoll, monkeypatch)
    assert any("_doReadOrWrite" in problem for problem in surface.problems)
    assert twistedepoll.install() is False



def test_infoNamesEverySurfaceAndStrictFailsWhenTwistedTLSIsUnusable(monkeypatch, capsys):
    from tlsfast import cli

    assert cli.main(["info", "--strict"]) == 0
    healthy = capsys.readouterr().out
    for module in (cryptobinding, pyopenssl, twistedtls, twistedsslverify, twistedtcp, twistedepoll):
        assert f"surface        {module.SURFACE.name}: ok" in healthy
    monkeypatch.setattr(twistedtls, "SURFACE", Surface("Twisted TLS protocol internals", "Twisted",
                                                       ((0, 0), (99, 0)), ["TLSMemoryBIOProtocol has no _tlsConnection"]))
    assert cli.main(["info", "--strict"]) == 1
    assert "Twisted TLS protocol internals: TLSMemoryBIOProtocol has no _tlsConnection" in capsys.readouterr().out
    assert cli.main(["info"]) == 0
