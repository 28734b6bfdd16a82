"""
In-memory TLS peers for engine tests: pyOpenSSL contexts from the test PKI
and stdlib SSLObject peers.  The pyOpenSSL and engine peers and the pump
that moves ciphertext between any two peers live in :mod:`tlsfast.bench.peers`
(the benchmarks use them too) and are re-exported here.
"""

from __future__ import annotations

import ssl
import tempfile

from OpenSSL import SSL, crypto

from tests import pki
from tlsfast import TLSEngine
from tlsfast.bench.peers import EnginePeer, PyOpenSSLPeer, pump, pyopenssl_connection

__all__ = ["EnginePeer", "PyOpenSSLPeer", "StdlibPeer", "client_context", "engine", "pump",
           "pyopenssl_connection", "server_context"]

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


def engine(context: SSL.Context, server: bool, hostname: bytes | None = b"example.com") -> TLSEngine:
    return TLSEngine(pyopenssl_connection(context, server, hostname))


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
