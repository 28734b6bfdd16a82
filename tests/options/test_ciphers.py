"""
TLS 1.2 cipher defaults: servers negotiate only forward-secret ECDHE key
exchange with AEAD ciphers (DHE too once given DH parameters), clients offer
Mozilla's "intermediate" list; C{ciphers=} replaces either.
"""

from __future__ import annotations

import pytest
from OpenSSL import SSL

from tests import pki
from tests.options.helpers import connect
from tests.options.test_memory import FFDHE2048
from tlsfast.options import (
    DEFAULT_CLIENT_CIPHERS,
    DEFAULT_SERVER_CIPHERS,
    ClientOptions,
    ServerOptions,
    connectionInfo,
)

pytestmark = pytest.mark.usefixtures("engineRequired")

RSA = pki.leaf("rsa", names=("example.com",))

# The specification, suite by suite: key exchange, authentication, cipher.
SERVER_SUITES = {
    f"ECDHE-{auth}-{cipher}"
    for auth in ("ECDSA", "RSA")
    for cipher in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305")
}
DHE_SUITES = {f"DHE-RSA-{c}" for c in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305")}


def tls12Suites(connection: SSL.Connection) -> list[str]:
    """The TLS 1.2 suites a Connection would offer or accept, in order."""
    return [name for name in connection.get_cipher_list() if not name.startswith("TLS_")]


def rsaServer(**kw) -> ServerOptions:
    return ServerOptions(RSA.certificate, RSA.key, **kw)


def tls12Client(ciphers: str | None = None) -> ClientOptions:
    """A TLS 1.2-only client trusting the test CA, offering C{ciphers}."""
    return ClientOptions("example.com", caCertificates=[pki.certificate_authority().certificate],
                         maximumVersion="1.2", ciphers=ciphers)


def test_serverConfiguresEcdheAeadOnly():
    """
    The server's Connections carry exactly the six ECDHE + AEAD suites:
    no static RSA, no DHE, no CBC.
    """
    suites = tls12Suites(rsaServer().newConnection())
    assert set(suites) == SERVER_SUITES
    assert len(suites) == len(SERVER_SUITES)
    assert suites == DEFAULT_SERVER_CIPHERS.split(":")


@pytest.mark.parametrize("offered", [
    "AES128-SHA",               # static RSA, CBC with a SHA-1 MAC
    "AES256-GCM-SHA384",        # static RSA, AEAD: no forward secrecy
    "AES128-SHA256",            # static RSA, CBC
    "ECDHE-RSA-AES128-SHA",     # forward-secret, but CBC with SHA-1
    "ECDHE-RSA-AES256-SHA384",  # forward-secret, but CBC
    "DHE-RSA-AES128-GCM-SHA256",  # DHE: only with dhParameters given
])
def test_serverRefusesNonForwardSecretOrCBC(offered):
    """
    An RSA-keyed server refuses a TLS 1.2 client that offers only a suite
    outside the default (OpenSSL's own default would have accepted each).
    """
    with pytest.raises(SSL.Error):
        connect(tls12Client(offered), rsaServer())
    if offered.startswith("DHE-"):
        return
    # The same client is accepted by OpenSSL's default list: the refusal is
    # the default's doing.
    pair = connect(tls12Client(offered), rsaServer(ciphers="DEFAULT"))
    assert connectionInfo(pair.server.connection).cipher == offered


@pytest.mark.parametrize("offered", ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                     "ECDHE-RSA-CHACHA20-POLY1305"])
def test_serverAcceptsEcdheAead(offered):
    """An RSA-keyed server accepts each ECDHE-RSA AEAD suite over TLS 1.2."""
    pair = connect(tls12Client(offered), rsaServer())
    info = connectionInfo(pair.server.connection)
    assert (info.version, info.cipher) == ("TLSv1.2", offered)


def test_serverPrefersAes128Gcm():
    """Against the default client, the server picks its first ECDHE-ECDSA suite."""
    identity = pki.leaf("ecdsa", names=("example.com",))
    pair = connect(tls12Client(), ServerOptions(identity.certificate, identity.key))
    assert connectionInfo(pair.server.connection).cipher == "ECDHE-ECDSA-AES128-GCM-SHA256"


def test_tls13Unaffected():
    """TLS 1.3 is negotiated as before, with its own suites."""
    client = ClientOptions("example.com", caCertificates=[pki.certificate_authority().certificate])
    info = connectionInfo(connect(client, rsaServer()).server.connection)
    assert info.version == "TLSv1.3"
    assert info.cipher.startswith("TLS_")


def test_dhParametersAddDheAead():
    """
    A server given DH parameters also accepts the DHE-RSA AEAD suites (and
    still no CBC or static RSA).
    """
    options = rsaServer(dhParameters=FFDHE2048)
    suites = tls12Suites(options.newConnection())
    assert set(suites) == SERVER_SUITES | DHE_SUITES
    pair = connect(tls12Client("DHE-RSA-AES128-GCM-SHA256"), options)
    assert connectionInfo(pair.server.connection).cipher == "DHE-RSA-AES128-GCM-SHA256"
    with pytest.raises(SSL.Error):
        connect(tls12Client("AES128-SHA"), options)


def test_ciphersOverride():
    """C{ciphers=} replaces the default list entirely."""
    options = rsaServer(ciphers="AES128-SHA:AES256-GCM-SHA384")
    assert tls12Suites(options.newConnection()) == ["AES128-SHA", "AES256-GCM-SHA384"]
    pair = connect(tls12Client("AES128-SHA"), options)
    assert connectionInfo(pair.server.connection).cipher == "AES128-SHA"


def test_clientOffersMozillaIntermediate():
    """
    The client offers the ECDHE AEAD suites, then the DHE-RSA AEAD suites,
    and nothing else; so a server accepting only static RSA or CBC fails.
    """
    client = tls12Client()
    suites = tls12Suites(client.newConnection())
    assert suites == DEFAULT_CLIENT_CIPHERS.split(":")
    assert suites[:len(SERVER_SUITES)] == DEFAULT_SERVER_CIPHERS.split(":")
    assert set(suites) == SERVER_SUITES | DHE_SUITES
    for serverOnly in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"):
        with pytest.raises(SSL.Error):
            connect(tls12Client(), rsaServer(ciphers=serverOnly))
    pair = connect(tls12Client("AES128-SHA"), rsaServer(ciphers="AES128-SHA"))
    assert connectionInfo(pair.client.connection).cipher == "AES128-SHA"
