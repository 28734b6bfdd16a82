#!/usr/bin/env python
"""
A TLS echo server that requires client certificates issued by a given CA:
Twisted's ssl_clientauth_server.py, with tlsfast.

    python ssl_clientauth_server.py --cert server.pem --ca ca.pem [--port 8000]

It prints the common name of each client certificate it accepts.
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task
from twisted.internet.interfaces import IHandshakeListener
from zope.interface import implementer


@implementer(IHandshakeListener)
class Echo(protocol.Protocol):
    def handshakeCompleted(self):
        client = ssl.Certificate.peerFromTransport(self.transport)
        print(f"client certificate: {client.getSubject().commonName.decode()}", flush=True)

    def dataReceived(self, data):
        self.transport.write(data)

    def connectionLost(self, reason):
        print(f"connection closed: {reason.getErrorMessage()}", flush=True)


async def main(reactor, args):
    with open(args.cert) as f:
        certificate = ssl.PrivateCertificate.loadPEM(f.read())
    with open(args.ca) as f:
        authority = ssl.Certificate.loadPEM(f.read())
    # options(authority): verify clients, require a certificate from it.
    endpoint = endpoints.SSL4ServerEndpoint(
        reactor, args.port, certificate.options(authority), interface=args.interface
    )
    port = await endpoint.listen(protocol.Factory.forProtocol(Echo))
    address = port.getHost()
    print(f"listening on {address.host}:{address.port}", flush=True)
    await defer.Deferred()  # serve until killed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", default="server.pem", help="certificate and key (PEM)")
    parser.add_argument("--ca", default="ca.pem", help="the CA of client certificates (PEM)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--interface", default="127.0.0.1")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
