#!/usr/bin/env python
"""
Connect to a TLS server, verify its certificate, and print who it is:
Twisted's check_server_certificate.py, with tlsfast.

    python check_server_certificate.py HOST [PORT] [--ca ca.pem]
                                       [--connect-address ADDRESS]

The certificate must be valid for HOST and chain to the system's trust roots
(or, with --ca, to that CA).  --connect-address connects to another address
while still verifying HOST (like curl --resolve).  Prints subject, issuer,
protocol version and cipher; exits with status 1 if verification fails.
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task
from twisted.internet.interfaces import IHandshakeListener
from zope.interface import implementer


@implementer(IHandshakeListener)
class ShowCertificate(protocol.Protocol):
    def connectionMade(self):
        self.done = defer.Deferred()
        self.shown = False

    def handshakeCompleted(self):
        certificate = self.transport.getPeerCertificate().to_cryptography()
        connection = self.transport.getHandle()
        print("verified: yes")
        print("subject:", certificate.subject.rfc4514_string())
        print("issuer:", certificate.issuer.rfc4514_string())
        print("not after:", certificate.not_valid_after_utc.isoformat())
        print("protocol:", connection.get_protocol_version_name())
        print("cipher:", connection.get_cipher_name(), flush=True)
        self.shown = True
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if self.shown:
            self.done.callback(None)
        else:
            self.done.errback(reason)


async def main(reactor, args):
    trustRoot = None  # the platform's
    if args.ca:
        with open(args.ca) as f:
            trustRoot = ssl.Certificate.loadPEM(f.read())
    options = ssl.optionsForClientTLS(args.host, trustRoot)
    endpoint = endpoints.SSL4ClientEndpoint(
        reactor, args.connect_address or args.host, args.port, options
    )
    try:
        client = await endpoints.connectProtocol(endpoint, ShowCertificate())
        await client.done
    except Exception as e:  # noqa: BLE001 - any failure (TLS, verification, connection) is the one line printed
        print(f"verification failed: {e}", flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host", help="the name the certificate must be valid for")
    parser.add_argument("port", type=int, nargs="?", default=443)
    parser.add_argument("--ca", help="trust this CA (PEM) instead of the system's")
    parser.add_argument("--connect-address", help="connect here instead of to HOST")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
