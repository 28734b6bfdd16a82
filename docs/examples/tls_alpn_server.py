#!/usr/bin/env python
"""
A TLS server that negotiates an application protocol with ALPN: Twisted's
tls_alpn_server.py, with tlsfast.

    python tls_alpn_server.py --cert server.pem [--port 8000]
                              [--protocols h2,http/1.1]

It tells each client which protocol was negotiated, then closes.
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task
from twisted.internet.interfaces import IHandshakeListener
from zope.interface import implementer


@implementer(IHandshakeListener)
class ResponderProtocol(protocol.Protocol):
    def handshakeCompleted(self):
        negotiated = self.transport.negotiatedProtocol
        print(f"negotiated protocol: {negotiated.decode() if negotiated else None}", flush=True)
        self.transport.write(b"Negotiated protocol: %s\n" % (negotiated or b"none",))
        self.transport.loseConnection()

    def connectionLost(self, reason):
        print(f"connection closed: {reason.getErrorMessage()}", flush=True)


async def main(reactor, args):
    with open(args.cert) as f:
        certificate = ssl.PrivateCertificate.loadPEM(f.read())
    options = ssl.CertificateOptions(
        privateKey=certificate.privateKey.original,
        certificate=certificate.original,
        acceptableProtocols=[p.encode() for p in args.protocols.split(",")],
    )
    endpoint = endpoints.SSL4ServerEndpoint(reactor, args.port, options, interface=args.interface)
    port = await endpoint.listen(protocol.Factory.forProtocol(ResponderProtocol))
    address = port.getHost()
    print(f"listening on {address.host}:{address.port}", flush=True)
    await defer.Deferred()  # serve until killed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", default="server.pem", help="certificate and key (PEM)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--protocols", default="h2,http/1.1", help="in order of preference")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
