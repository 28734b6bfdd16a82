import pytest

import tlsfast
from tests import pki
from tlsfast.options import ClientOptions, ServerOptions


@pytest.fixture(autouse=True)
def _noKeyLogFromEnvironment(monkeypatch):
    # A developer's SSLKEYLOGFILE must not change what the tests see.
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)


@pytest.fixture
def engineRequired():
    if not tlsfast.ACCELERATED:
        pytest.skip("tlsfast engine unavailable")


@pytest.fixture
def server():
    """ServerOptions for example.com (ECDSA) built from cryptography objects."""
    identity = pki.leaf("ecdsa", names=("example.com",))
    return lambda **kw: ServerOptions(identity.certificate, identity.key, **kw)


@pytest.fixture
def client():
    """ClientOptions for example.com trusting only the test CA."""
    ca = pki.certificate_authority().certificate
    return lambda hostname="example.com", **kw: ClientOptions(
        hostname, **({"caCertificates": [ca]} | kw))
