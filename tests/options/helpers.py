"""
Helpers for the options tests: PEM files from tests/pki.py identities, and
in-memory handshakes between connections made by tlsfast options (on the
tlsfast engine) and other peers.
"""

from __future__ import annotations

from OpenSSL import SSL

from tests import peers, pki
from tlsfast import TLSEngine


def writePEMs(directory, names=("example.com",), kind="ecdsa", client=False, prefix="server"):
    """Write <prefix>.crt, <prefix>.key and ca.pem; return the three paths."""
    identity = pki.leaf(kind, names=tuple(names), client=client)
    cert = directory / f"{prefix}.crt"
    key = directory / f"{prefix}.key"
    ca = directory / "ca.pem"
    cert.write_bytes(identity.cert_pem)
    key.write_bytes(identity.key_pem)
    ca.write_bytes(pki.certificate_authority().cert_pem)
    return str(cert), str(key), str(ca)


class Pair:
    """A client and a server engine wired together in memory."""

    def __init__(self, clientConnection, serverConnection):
        self.client = peers.EnginePeer(TLSEngine(clientConnection))
        self.server = peers.EnginePeer(TLSEngine(serverConnection))

    def handshake(self):
        """Run the handshake; raise what either side raised."""
        self.client.start()
        self.server.start()
        peers.pump(self.client, self.server)
        return self

    def exchange(self, request=b"ping", response=b"pong"):
        """Send a request and a response; return what each side got."""
        got = self.server.receive(self.client.send(request))
        back = self.client.receive(self.server.send(response))
        # The client may still owe bytes (nothing in TLS 1.3, but be exact).
        peers.pump(self.client, self.server)
        return got, back

    def close(self):
        """Both close_notify alerts, as a clean Twisted close does."""
        for closing, peer in ((self.client, self.server), (self.server, self.client)):
            closing.engine.shutdown()
            try:
                peer.receive(closing.outgoing())
            except SSL.ZeroReturnError:
                pass


def connect(clientOptions, serverOptions, port=443):
    """A handshaken Pair made by the two options objects."""
    return Pair(clientOptions.newConnection(port), serverOptions.newConnection()).handshake()


def connectAndClose(clientOptions, serverOptions, port=443):
    """A Pair that handshook, exchanged data and closed cleanly."""
    pair = connect(clientOptions, serverOptions, port)
    pair.exchange()
    pair.close()
    return pair
