"""
Where a client's trust comes from: the platform, certifi when the platform
has no CA bundle, a Twisted trust root, or given CAs.
"""

from __future__ import annotations

import pytest
from OpenSSL import SSL
from twisted.internet.ssl import Certificate, trustRootFromCertificates

from tests import pki
from tests.options.helpers import connect, writePEMs
from tlsfast.options import ClientOptions, ConfigurationError, _client

pytestmark = pytest.mark.usefixtures("engineRequired")


def test_platformByDefault(server):
    """The platform's CAs: our test CA is not among them."""
    assert _client.platformTrustAvailable()
    options = ClientOptions("example.com")
    assert options.trustSource == "platform"
    with pytest.raises(SSL.Error, match="certificate verify failed"):
        connect(options, server())


def test_certifiWhenPlatformHasNone(server, tmp_path, monkeypatch):
    """
    No platform bundle: certifi's is loaded.  (certifi.where() is pointed at
    the test CA so that the test can see it was really used.)
    """
    import certifi

    _, _, ca = writePEMs(tmp_path)
    monkeypatch.setattr(_client, "platformTrustAvailable", lambda: False)
    monkeypatch.setattr(certifi, "where", lambda: ca)
    options = ClientOptions("example.com")
    assert options.trustSource == "certifi"
    assert connect(options, server()).exchange() == (b"ping", b"pong")


def test_noTrustAnywhere(monkeypatch):
    import builtins

    realImport = builtins.__import__

    def noCertifi(name, *args, **kwargs):
        if name == "certifi":
            raise ImportError(name)
        return realImport(name, *args, **kwargs)

    monkeypatch.setattr(_client, "platformTrustAvailable", lambda: False)
    monkeypatch.setattr(builtins, "__import__", noCertifi)
    with pytest.raises(ConfigurationError, match="no CA certificates and certifi is not installed"):
        ClientOptions("example.com")


def test_twistedTrustRoot(server):
    root = trustRootFromCertificates([Certificate.loadPEM(pki.certificate_authority().cert_pem)])
    options = ClientOptions("example.com", trustRoot=root)
    assert options.trustSource == "trustRoot"
    assert connect(options, server()).exchange() == (b"ping", b"pong")


@pytest.mark.parametrize("how", ["caFile", "caPath", "caCertificates"])
def test_given(server, tmp_path, how):
    _, _, ca = writePEMs(tmp_path)
    if how == "caPath":
        # OpenSSL looks certificates up by subject hash in a directory.
        import subprocess

        name = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", ca],
                              capture_output=True, text=True, timeout=30).stdout.strip()
        (tmp_path / f"{name}.0").write_bytes(pki.certificate_authority().cert_pem)
        value = str(tmp_path)
    elif how == "caFile":
        value = ca
    else:
        value = [pki.certificate_authority().cert_pem]
    options = ClientOptions("example.com", **{how: value})
    assert connect(options, server()).exchange() == (b"ping", b"pong")
