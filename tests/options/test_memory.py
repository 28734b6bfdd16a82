"""
ServerOptions and ClientOptions against each other and against stdlib ssl,
in memory on the tlsfast engine: every option's effect on the handshake.
"""

from __future__ import annotations

import ssl

import pytest
from OpenSSL import SSL

from tests import pki
from tests.options.helpers import Pair, connect, connectAndClose
from tlsfast import TLSEngine
from tlsfast._foreign import pyopenssl
from tlsfast.options import ClientOptions, ServerOptions, connectionInfo
from tlsfast.options._policy import HAS

pytestmark = pytest.mark.usefixtures("engineRequired")


def test_defaults(client, server):
    """
    Defaults: TLS 1.3 with the hybrid post-quantum group, data flows, and
    the info of both sides says so.
    """
    pair = connect(client(), server())
    assert pair.exchange() == (b"ping", b"pong")
    for connection in (pair.client.connection, pair.server.connection):
        info = connectionInfo(connection)
        assert info.handshakeDone
        assert info.version == "TLSv1.3"
        assert info.group == "X25519MLKEM768"
        assert info.resumed is False
        assert info.handshakeDuration >= 0
    assert connectionInfo(pair.server.connection).serverName == "example.com"
    assert connectionInfo(pair.client.connection).side == "client"


@pytest.mark.parametrize("filtered", [True, False], ids=["filtered", "pyOpenSSL-fallback"])
def test_serverInfoCallbackInstallPaths(client, server, monkeypatch, filtered):
    """
    The server's info callback is installed filtered (only handshake start
    and done reach Python) when pyOpenSSL's Connection lookup is there, and
    through pyOpenSSL's set_info_callback when it is not: either way the
    info is complete, once per handshake.
    """
    if not filtered:
        # As if the seam's check of pyOpenSSL's internals had failed at import.
        monkeypatch.setattr(pyopenssl.SURFACE, "problems", ["pyOpenSSL internals: Connection has no _reverse_mapping"])
        for name in HAS:
            monkeypatch.setitem(HAS, name, False)
    seen, events = [], []
    options = server()
    monitor = options.monitor
    monitor.onHandshakeDone = lambda connection, info: seen.append(info)
    unwrapped = monitor._infoCallback

    def counting(connection, where, ret):
        events.append(where)
        unwrapped(connection, where, ret)

    monitor._infoCallback = counting
    monitor.install(options.getContext())  # again, under the patched pyOpenSSL
    pair = connect(client(), options)
    info = connectionInfo(pair.server.connection)
    assert seen == [info]
    if filtered:
        assert events == [SSL.SSL_CB_HANDSHAKE_START, SSL.SSL_CB_HANDSHAKE_DONE]
    else:
        assert len(events) > 10  # pyOpenSSL passes every event on
    assert info.handshakeDone and info.version == "TLSv1.3" and info.serverName == "example.com"
    assert info.handshakeDuration >= 0


@pytest.mark.parametrize("groups, expected", [
    ("X25519MLKEM768", "X25519MLKEM768"),
    ("X25519", "x25519"),
    ("P-256", "secp256r1"),
])
def test_groups(client, server, groups, expected):
    """The group list restricts key exchange on either side."""
    pair = connect(client(groups=groups), server())
    assert pair.client.connection.get_group_name() == expected
    pair = connect(client(), server(groups=groups))
    assert pair.server.connection.get_group_name() == expected


def test_groupsNoOverlap(client, server):
    with pytest.raises(SSL.Error):
        connect(client(groups="X25519"), server(groups="P-256"))


@pytest.mark.parametrize("side", ["client", "server"])
def test_maximumVersion(client, server, side):
    options = {"maximumVersion": "1.2"}
    pair = connect(client(**options if side == "client" else {}),
                   server(**options if side == "server" else {}))
    assert connectionInfo(pair.client.connection).version == "TLSv1.2"


def test_minimumVersionRefused(client, server):
    """A 1.3-only server refuses a 1.2-only client."""
    with pytest.raises(SSL.Error):
        connect(client(maximumVersion="1.2"), server(minimumVersion="1.3"))


def test_defaultMinimumIsTLS12():
    """Without a minimum, the context still refuses TLS 1.1 and below."""
    options = ServerOptions(pki.leaf().cert_pem, pki.leaf().key_pem)
    assert options.policy.minimumVersion == SSL.TLS1_2_VERSION


def test_ciphers(client, server):
    """The TLS 1.2 cipher string and TLS 1.3 suites select what is used."""
    pair = connect(client(maximumVersion="1.2"),
                   server(ciphers="ECDHE-ECDSA-CHACHA20-POLY1305"))
    assert connectionInfo(pair.server.connection).cipher == "ECDHE-ECDSA-CHACHA20-POLY1305"
    pair = connect(client(tls13Ciphers="TLS_CHACHA20_POLY1305_SHA256"), server())
    assert connectionInfo(pair.client.connection).cipher == "TLS_CHACHA20_POLY1305_SHA256"


def test_dhParameters(client, server, tmp_path):
    """DH parameters enable finite-field DHE for TLS 1.2."""
    # Generating 2048-bit parameters is slow; RFC 7919's ffdhe2048 group is
    # the standard choice anyway.
    rsa = pki.leaf("rsa", names=("example.com",))
    options = ServerOptions(rsa.certificate, rsa.key, dhParameters=FFDHE2048,
                            ciphers="DHE-RSA-AES128-GCM-SHA256", maximumVersion="1.2")
    pair = connect(client(ciphers="DHE-RSA-AES128-GCM-SHA256"), options)
    assert connectionInfo(pair.client.connection).cipher == "DHE-RSA-AES128-GCM-SHA256"


FFDHE2048 = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


class TestALPN:
    def test_overlap(self, client, server):
        pair = connect(client(acceptableProtocols=[b"h2", b"http/1.1"]),
                       server(acceptableProtocols=[b"http/1.1", b"h2"]))
        # The server's preference wins.
        assert connectionInfo(pair.client.connection).alpn == b"http/1.1"
        assert connectionInfo(pair.server.connection).alpn == b"http/1.1"

    def test_serverWithoutALPNAcceptsOfferingClient(self, client, server):
        """The stock-Twisted bug: a server without ALPN must not refuse."""
        pair = connect(client(acceptableProtocols=[b"h2"]), server())
        assert pair.exchange() == (b"ping", b"pong")
        assert connectionInfo(pair.client.connection).alpn is None

    def test_noOverlapFails(self, client, server):
        with pytest.raises(SSL.Error):
            connect(client(acceptableProtocols=[b"h2"]),
                    server(acceptableProtocols=[b"http/1.1"]))

    def test_stdlibClient(self, server):
        """An independent client sees the server's choice."""
        context = ssl.create_default_context(cadata=pki.certificate_authority().cert_pem.decode())
        context.set_alpn_protocols(["spdy/3", "h2"])
        got = _stdlibHandshake(context, server(acceptableProtocols=[b"h2"]))
        assert got.selected_alpn_protocol() == "h2"


def _stdlibHandshake(context, serverOptions, hostname="example.com"):
    """Handshake a stdlib SSLObject with a server from ServerOptions."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context.wrap_bio(incoming, outgoing, server_hostname=hostname)
    engine = TLSEngine(serverOptions.newConnection())
    for _ in range(10):
        try:
            obj.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        data = outgoing.read()
        if data:
            engine.receive(data)
        reply = engine.outgoing()
        if reply:
            incoming.write(reply)
        if done and not reply:
            return obj
    raise AssertionError("no handshake")


class TestSNI:
    @pytest.fixture
    def options(self):
        default = pki.leaf("ecdsa", names=("default.test",))
        exact = pki.leaf("ecdsa", names=("exact.test",))
        wildcard = pki.leaf("rsa", names=("*.wild.test",))
        return ServerOptions(default.certificate, default.key, serverNames={
            "exact.test": (exact.cert_pem, exact.key_pem),
            "*.wild.test": (wildcard.certificate, wildcard.key),
        })

    @pytest.mark.parametrize("name, served", [
        ("exact.test", "exact.test"),
        ("a.wild.test", "*.wild.test"),
        ("other.test", "default.test"),
    ])
    def test_selection(self, options, name, served):
        """The certificate follows SNI; unknown names get the default."""
        ca = pki.certificate_authority().certificate
        clientOptions = ClientOptions(name, caCertificates=[ca])
        if served != name and not served.startswith("*"):
            # The default certificate does not match: verification fails.
            with pytest.raises(SSL.Error):
                connect(clientOptions, options)
            return
        pair = connect(clientOptions, options)
        peer = pair.client.connection.get_peer_certificate().to_cryptography()
        assert peer.subject.rfc4514_string() == f"CN={served}"
        assert connectionInfo(pair.server.connection).serverName == name

    def test_noSNIGetsDefault(self, options):
        ca = pki.certificate_authority().certificate
        pair = connect(ClientOptions("default.test", caCertificates=[ca], sendServerName=False), options)
        peer = pair.client.connection.get_peer_certificate().to_cryptography()
        assert peer.subject.rfc4514_string() == "CN=default.test"
        assert connectionInfo(pair.server.connection).serverName is None


class TestVerification:
    def test_hostnameMismatch(self, client, server):
        """RFC 6125 through service_identity: a wrong name fails the handshake."""
        clientOptions = client("other.example.com")
        connection = clientOptions.newConnection(443)
        with pytest.raises(SSL.Error):
            Pair(connection, server().newConnection()).handshake()
        failure = connection.get_app_data().verificationFailure
        assert "other.example.com" in str(failure.value)

    def test_ipAddress(self, client):
        """An IP address is checked against IP SANs and is not sent as SNI."""
        identity = pki.leaf("ecdsa", names=("127.0.0.1",))
        serverOptions = ServerOptions(identity.certificate, identity.key)
        pair = connect(client("127.0.0.1"), serverOptions)
        assert pair.exchange() == (b"ping", b"pong")
        assert connectionInfo(pair.server.connection).serverName is None
        with pytest.raises(SSL.Error):
            connect(client("127.0.0.2"), serverOptions)

    def test_untrustedCA(self, server):
        other = pki.certificate_authority("ecdsa", "another CA").certificate
        with pytest.raises(SSL.Error):
            connect(ClientOptions("example.com", caCertificates=[other]), server())

    def test_clientCertificateRequired(self, client, server):
        ca = pki.certificate_authority().certificate
        required = server(clientCertificate="required", caCertificates=[ca])
        with pytest.raises(SSL.Error):
            pair = connect(client(), required)
            # TLS 1.3: the server's verdict comes after the client's Finished.
            pair.exchange()
        me = pki.leaf("ecdsa", names=("client.example.com",), client=True)
        pair = connect(client(clientCertificate=me.certificate, clientKey=me.key), required)
        assert pair.exchange() == (b"ping", b"pong")
        peer = pair.server.connection.get_peer_certificate().to_cryptography()
        assert peer == me.certificate

    def test_clientCertificateOptional(self, client, server):
        ca = pki.certificate_authority().certificate
        optional = server(clientCertificate="optional", caCertificates=[ca])
        pair = connect(client(), optional)
        assert pair.exchange() == (b"ping", b"pong")
        assert pair.server.connection.get_peer_certificate() is None

    def test_clientCertificateFromOtherCA(self, client, server):
        ca = pki.certificate_authority().certificate
        required = server(clientCertificate="required", caCertificates=[ca])
        stranger = pki.leaf("ecdsa", names=("c",), client=True, ca_name="another CA")
        with pytest.raises(SSL.Error):
            pair = connect(client(clientCertificate=stranger.certificate,
                                  clientKey=stranger.key), required)
            pair.exchange()


class TestResumption:
    @pytest.mark.parametrize("version", ["1.2", "1.3"])
    def test_resumes(self, client, server, version):
        """The second connection to the same (host, port) resumes."""
        clientOptions, serverOptions = client(maximumVersion=version), server()
        first = connectAndClose(clientOptions, serverOptions)
        assert connectionInfo(first.client.connection).resumed is False
        second = connect(clientOptions, serverOptions)
        second.exchange()
        assert connectionInfo(second.client.connection).resumed is True
        assert connectionInfo(second.server.connection).resumed is True
        assert connectionInfo(second.client.connection).version == f"TLSv{version}"

    def test_otherPortDoesNotResume(self, client, server):
        clientOptions, serverOptions = client(), server()
        connectAndClose(clientOptions, serverOptions, port=443)
        second = connect(clientOptions, serverOptions, port=8443)
        assert connectionInfo(second.client.connection).resumed is False

    def test_otherTrustDoesNotResume(self, client, server):
        """
        Options with different trust settings never share a session, even
        for the same host and port.
        """
        serverOptions = server()
        connectAndClose(client(), serverOptions)
        ca = pki.certificate_authority()
        other = ClientOptions("example.com", caCertificates=[ca.certificate,
                              pki.certificate_authority("rsa").certificate])
        second = connect(other, serverOptions)
        second.exchange()
        assert connectionInfo(second.client.connection).resumed is False

    def test_sameOptionsAfterOtherTrust(self, client, server):
        serverOptions, clientOptions = server(), client()
        connectAndClose(clientOptions, serverOptions)
        other = connect(client(), serverOptions)
        other.exchange()
        again = connect(clientOptions, serverOptions)
        again.exchange()
        assert connectionInfo(again.client.connection).resumed is True

    def test_uncleanCloseDoesNotResume(self, client, server):
        """OpenSSL drops a session whose connection ended without close_notify."""
        clientOptions, serverOptions = client(), server()
        first = connect(clientOptions, serverOptions)
        first.exchange()
        del first
        import gc

        gc.collect()
        second = connect(clientOptions, serverOptions)
        assert connectionInfo(second.client.connection).resumed is False

    @pytest.mark.parametrize("version", ["1.2", "1.3"])
    @pytest.mark.parametrize("tickets, cache, resumes", [
        (False, False, False),  # nothing to resume from
        (False, True, True),    # stateful: session IDs (TLS 1.3: stateful tickets)
        (True, False, True),    # stateless tickets
    ])
    def test_serverSide(self, client, server, version, tickets, cache, resumes):
        """The server's tickets and cache decide whether it can resume."""
        clientOptions = client(maximumVersion=version)
        serverOptions = server(sessionTickets=tickets, sessionCache=cache)
        connectAndClose(clientOptions, serverOptions)
        second = connect(clientOptions, serverOptions)
        second.exchange()
        assert connectionInfo(second.server.connection).resumed is resumes

    def test_sharedCacheKeepsOptionsApart(self, client, server):
        """One SessionCache for two options objects: each resumes only its own."""
        from tlsfast.options import SessionCache

        cache, serverOptions = SessionCache(), server()
        first, second = client(sessionCache=cache), client(sessionCache=cache)
        connectAndClose(first, serverOptions)
        assert connectionInfo(connect(second, serverOptions).client.connection).resumed is False
        assert connectionInfo(connect(first, serverOptions).client.connection).resumed is True
        assert len(cache) == 2  # one entry per options object

    def test_clientCacheOff(self, client, server):
        clientOptions, serverOptions = client(sessionCache=False), server()
        connectAndClose(clientOptions, serverOptions)
        second = connect(clientOptions, serverOptions)
        assert connectionInfo(second.client.connection).resumed is False

    def test_stdlibClientResumes(self, server):
        """An independent client resumes with our server."""
        serverOptions = server()
        context = ssl.create_default_context(cadata=pki.certificate_authority().cert_pem.decode())
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        first = _stdlibHandshake(context, serverOptions)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        second = context.wrap_bio(incoming, outgoing, server_hostname="example.com",
                                  session=first.session)
        engine = TLSEngine(serverOptions.newConnection())
        for _ in range(5):
            try:
                second.do_handshake()
            except ssl.SSLWantReadError:
                pass
            engine.receive(outgoing.read())
            incoming.write(engine.outgoing())
        assert second.session_reused
        assert connectionInfo(engine.connection).resumed is True


class TestRecordCounters:
    def test_counts(self, client, server):
        """Ciphertext bytes and records, each way, match on both ends."""
        pair = connect(client(countRecords=True), server(countRecords=True))
        ciphertext = pair.client.send(b"x" * 20000)
        pair.server.receive(ciphertext)
        c = connectionInfo(pair.client.connection)
        s = connectionInfo(pair.server.connection)
        assert c.ciphertextBytesSent == s.ciphertextBytesReceived
        assert c.recordsSent == s.recordsReceived
        assert s.ciphertextBytesSent == c.ciphertextBytesReceived
        # 20000 bytes take two 16 KiB records.
        before = c.recordsSent
        pair.server.receive(pair.client.send(b"y" * 20000))
        assert c.recordsSent - before == 2
        assert c.plaintextBytesSent is None  # needs the glue

    def test_offByDefault(self, client, server):
        pair = connect(client(), server())
        assert connectionInfo(pair.client.connection).recordsSent is None


def test_idle_connections_release_their_buffers(client, server):
    """
    Both sides set SSL_MODE_RELEASE_BUFFERS: an idle connection does not
    keep OpenSSL's 16 KiB+ read and write buffers (about 29 KiB each).
    """
    for options in (client(), server()):
        mode = options.getContext().set_mode(0)  # ORs nothing in; returns the mode
        assert mode & SSL.MODE_RELEASE_BUFFERS
    pair = connect(client(), server())
    assert pair.exchange() == (b"ping", b"pong")  # and data still flows both ways
