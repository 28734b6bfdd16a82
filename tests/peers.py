"""
In-memory TLS peers for engine tests: pyOpenSSL contexts, stdlib SSLObject
peers, and pumps that move ciphertext between any two of them.
"""

from __future__ import annotations

import ssl
import tempfile

from OpenSSL import SSL, crypto

from tests import pki
from tlsfast import TLSEngine

VERSIONS = {
    "1.2": (SSL.TLS1_2_VERSION, ssl.TLSVersion.TLSv1_2),
    "1.3": (SSL.TLS1_3_VERSION, ssl.TLSVersion.TLSv1_3),
}

# TLS 1.3 suites are set per connection through the cipher-suite API; TLS 1.2
# through the cipher string.  Keep each pair meaning the same AEAD.
SUITES = {
    ("1.3", "aesgcm"): "TLS_AES_128_GCM_SHA256",
    ("1.3", "chacha"): "TLS_CHACHA20_POLY1305_SHA256",
    ("1.2", "aesgcm"): "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
    ("1.2", "chacha"): "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
}


def _pin(context: SSL.Context, version: str, suite: str) -> None:
    v = VERSIONS[version][0]
    context.set_min_proto_version(v)
    context.set_max_proto_version(v)
    if version == "1.3":
        context.set_tls13_ciphersuites(SUITES[(version, suite)].encode())
    else:
        context.set_cipher_list(SUITES[(version, suite)].encode())


def server_context(kind="ecdsa", version="1.3", suite="aesgcm") -> SSL.Context:
    identity = pki.leaf(kind)
    context = SSL.Context(SSL.TLS_METHOD)
    context.use_certificate(identity.certificate)
    context.use_privatekey(identity.key)
    _pin(context, version, suite)
    return context


def client_context(version="1.3", suite="aesgcm", ca_kind="ecdsa", verify=True) -> SSL.Context:
    context = SSL.Context(SSL.TLS_METHOD)
    _pin(context, version, suite)
    if verify:
        context.get_cert_store().add_cert(
            crypto.X509.from_cryptography(pki.certificate_authority(ca_kind).certificate))
        context.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: ok)
    return context


def pyopenssl_connection(context: SSL.Context, server: bool, hostname: bytes | None = None):
    connection = SSL.Connection(context, None)
    if server:
        connection.set_accept_state()
    else:
        connection.set_connect_state()
        if hostname:
            connection.set_tlsext_host_name(hostname)
    return connection


def engine(context: SSL.Context, server: bool, hostname: bytes | None = b"example.com") -> TLSEngine:
    return TLSEngine(pyopenssl_connection(context, server, hostname))


class PyOpenSSLPeer:
    """A plain pyOpenSSL Connection driven the way stock Twisted drives it."""

    def __init__(self, connection: SSL.Connection):
        self.connection = connection

    def start(self) -> None:
        try:
            self.connection.do_handshake()
        except SSL.WantReadError:
            pass

    def receive(self, ciphertext: bytes) -> bytes:
        if ciphertext:  # pyOpenSSL's bio_write(b"") raises WantReadError
            self.connection.bio_write(ciphertext)
        out = []
        try:
            self.connection.do_handshake()
        except SSL.WantReadError:
            return b""
        while True:
            try:
                out.append(self.connection.recv(65536))
            except SSL.WantReadError:
                break
        return b"".join(out)

    def send(self, plaintext: bytes) -> bytes:
        """Encrypt plaintext; return the ciphertext (and anything queued)."""
        view = memoryview(plaintext)
        while view:
            sent = self.connection.send(view[:65536])
            view = view[sent:]
        return self.outgoing()

    def receive_eof(self) -> bytes:
        """The transport closed: what stock Twisted's connectionLost does."""
        self.connection.bio_shutdown()
        return self.connection.recv(65536)

    def outgoing(self) -> bytes:
        out = []
        while True:
            try:
                out.append(self.connection.bio_read(65536))
            except SSL.WantReadError:
                break
        return b"".join(out)


class StdlibPeer:
    """An independent stack: CPython's ssl (system OpenSSL) over MemoryBIOs."""

    def __init__(self, server: bool, version="1.3", suite="aesgcm", kind="ecdsa",
                 hostname="example.com"):
        v = VERSIONS[version][1]
        if server:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            identity = pki.leaf(kind)
            with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
                cert.write(identity.cert_pem)
                cert.flush()
                key.write(identity.key_pem)
                key.flush()
                context.load_cert_chain(cert.name, key.name)
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(cadata=pki.certificate_authority("ecdsa").cert_pem.decode())
        context.minimum_version = v
        context.maximum_version = v
        if version == "1.2":
            context.set_ciphers(SUITES[(version, suite)])
        else:
            # stdlib cannot restrict TLS 1.3 suites; our side pins them.
            pass
        self.incoming = ssl.MemoryBIO()
        self.outgoing_bio = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing_bio, server_side=server,
                                    server_hostname=None if server else hostname)
        self.handshake_done = False

    def start(self) -> None:
        self._handshake()

    def _handshake(self) -> bool:
        if not self.handshake_done:
            try:
                self.obj.do_handshake()
                self.handshake_done = True
            except ssl.SSLWantReadError:
                return False
        return True

    def receive(self, ciphertext: bytes) -> bytes:
        self.incoming.write(ciphertext)
        if not self._handshake():
            return b""
        out = []
        while True:
            try:
                chunk = self.obj.read(1 << 20)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)

    def send(self, plaintext: bytes) -> bytes:
        """Encrypt plaintext; return the ciphertext (and anything queued)."""
        view = memoryview(plaintext)
        while view:
            sent = self.obj.write(view[:1 << 20])
            view = view[sent:]
        return self.outgoing()

    def outgoing(self) -> bytes:
        return self.outgoing_bio.read()


def engine_peer(eng: TLSEngine):
    """Adapt an engine to the peer interface the pump uses."""
    return EnginePeer(eng)


class EnginePeer:
    def __init__(self, eng: TLSEngine):
        self.engine = eng
        self.received = []

    @property
    def connection(self):
        return self.engine.connection

    def start(self) -> None:
        self.engine.do_handshake()

    def receive(self, ciphertext: bytes) -> bytes:
        return self.engine.receive(ciphertext)

    def send(self, plaintext) -> bytes:
        return self.engine.send(plaintext) + self.engine.outgoing()

    def receive_eof(self) -> bytes:
        return self.engine.receive_eof()

    def outgoing(self) -> bytes:
        return self.engine.outgoing()


def pump(a, b, rounds: int = 20, a_got=None, b_got=None) -> None:
    """Move ciphertext back and forth until both sides go quiet."""
    for _ in range(rounds):
        moved = False
        data = a.outgoing()
        if data:
            moved = True
            got = b.receive(data)
            if b_got is not None and got:
                b_got.append(got)
        data = b.outgoing()
        if data:
            moved = True
            got = a.receive(data)
            if a_got is not None and got:
                a_got.append(got)
        if not moved:
            return
    raise AssertionError("pump did not go quiet")
