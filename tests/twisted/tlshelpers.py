"""
Helpers for the Twisted glue tests: Twisted TLS options made from tests/pki.py
identities, recording protocols, and the stock/tlsfast parametrization.

Every behaviour test is a mixin run twice (the uvloop habit): once against
stock Twisted and once with ``tlsfast.twisted.install()``; each run checks
that its connections really went (or did not go) through tlsfast.
"""

from __future__ import annotations

import hashlib

from twisted.internet import defer
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    optionsForClientTLS,
    trustRootFromCertificates,
)
from twisted.trial.unittest import SkipTest
from zope.interface import implementer

import tlsfast
import tlsfast.twisted
from tests import pki
from tlsfast._foreign import twistedtls as _protocol


def privateCertificate(identity) -> PrivateCertificate:
    """A Twisted PrivateCertificate for a tests/pki.py identity."""
    return PrivateCertificate.loadPEM(identity.cert_pem + identity.key_pem)


def caCertificate(kind: str = "ecdsa", name: str = "tlsfast test CA") -> Certificate:
    return Certificate.loadPEM(pki.certificate_authority(kind, name).cert_pem)


def serverOptions(names=("example.com",), **kwargs) -> CertificateOptions:
    """CertificateOptions for a server certificate valid for ``names``."""
    certificate = privateCertificate(pki.leaf("ecdsa", names=tuple(names)))
    return CertificateOptions(
        privateKey=certificate.privateKey.original,
        certificate=certificate.original,
        **kwargs,
    )


def clientOptions(hostname="example.com", caName="tlsfast test CA", **kwargs):
    """optionsForClientTLS trusting only the named test CA."""
    return optionsForClientTLS(
        hostname, trustRoot=trustRootFromCertificates([caCertificate(name=caName)]), **kwargs
    )


@implementer(IHandshakeListener)
class Recorder(Protocol):
    """
    Records what happens to one connection; C{handshake} and C{lost} fire
    when the TLS handshake completes and when the connection is lost.
    """

    def __init__(self):
        self.chunks = []
        self.handshake = defer.Deferred()
        self.lost = defer.Deferred()
        self.reason = None
        self.digest = hashlib.sha256()
        self.length = 0
        self.waiting = None  # (length, Deferred) for waitFor()

    completedHandshake = False

    def connectionMade(self):
        connected = getattr(getattr(self, "factory", None), "connected", None)
        if connected is not None and not connected.called:
            connected.callback(self)

    def handshakeCompleted(self):
        self.completedHandshake = True
        self.handshake.callback(self)

    def dataReceived(self, data):
        self.chunks.append(data)
        self.digest.update(data)
        self.length += len(data)
        if self.waiting is not None and self.length >= self.waiting[0]:
            d, self.waiting = self.waiting[1], None
            d.callback(self)

    def waitFor(self, length):
        """A Deferred firing once C{length} bytes in total have arrived."""
        if self.length >= length:
            return defer.succeed(self)
        d = defer.Deferred()
        self.waiting = (length, d)
        return d

    @property
    def received(self):
        return b"".join(self.chunks)

    def connectionLost(self, reason):
        self.reason = reason
        if not self.handshake.called:
            # Nobody will ever see the handshake: don't leave it dangling.
            self.handshake.errback(reason)
            self.handshake.addErrback(lambda _: None)
        self.lost.callback(None)


class Echo(Recorder):
    """Echoes everything back."""

    def dataReceived(self, data):
        Recorder.dataReceived(self, data)
        self.transport.write(data)


class RecordingFactory(ClientFactory):
    """
    Builds C{protocol} instances and keeps them in C{instances}; C{connected}
    fires with the first one once it is connected.
    """

    def __init__(self, protocol=Recorder):
        self.protocol = protocol
        self.instances = []
        self.connected = defer.Deferred()

    def buildProtocol(self, addr):
        p = self.protocol()
        p.factory = self
        self.instances.append(p)
        return p


def countEngineConnections(testCase) -> None:
    """
    Count in C{testCase.engineConnections} the connections that run on the
    tlsfast engine from now until the test's cleanup.
    """
    testCase.engineConnections = 0
    original = _protocol.engineFor

    def countingEngineFor(connection):
        engine = original(connection)
        if engine is not None:
            testCase.engineConnections += 1
        return engine

    _protocol.engineFor = countingEngineFor
    testCase.addCleanup(setattr, _protocol, "engineFor", original)


class ImplementationMixin:
    """
    Runs a test class against stock Twisted (C{tlsfastInstalled = False}) or
    with tlsfast installed, and counts the connections that ran on the
    tlsfast engine so that a test can prove which implementation it used.
    """

    tlsfastInstalled = False

    def setUp(self):
        if self.tlsfastInstalled:
            if not tlsfast.ACCELERATED:
                raise SkipTest("tlsfast engine unavailable")
            self.assertTrue(tlsfast.twisted.install())
            self.addCleanup(tlsfast.twisted.uninstall)
        self.expectEngine = self.tlsfastInstalled
        countEngineConnections(self)
        self.addCleanup(self.checkImplementation)

    def checkImplementation(self):
        # Called at cleanup: every test must have made TLS connections through
        # the implementation it claims to test.
        if self.expectEngine:
            self.assertGreater(self.engineConnections, 0, "no connection used tlsfast")
        else:
            self.assertEqual(self.engineConnections, 0, "stock run used tlsfast")


def parametrize(mixin, namespace, name):
    """
    Define C{Stock<name>} and C{Tlsfast<name>} TestCases from C{mixin} in
    C{namespace}.
    """
    from twisted.trial.unittest import TestCase

    for prefix, installed in (("Stock", False), ("Tlsfast", True)):
        cls = type(prefix + name, (ImplementationMixin, mixin, TestCase),
                   {"tlsfastInstalled": installed, "__module__": namespace["__name__"]})
        namespace[cls.__name__] = cls
