#!/usr/bin/env python
"""
A TLS client that presents a client certificate: Twisted's
ssl_clientauth_client.py, with tlsfast.

    python ssl_clientauth_client.py --cert client.pem --ca ca.pem
        [--host 127.0.0.1] [--port 8000] [--hostname example.com]

client.pem holds the client's certificate and key; without --cert no
certificate is presented (and the server refuses the connection).  Exits
with status 1 if the connection fails.
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task
from twisted.internet.error import ConnectionDone
from twisted.protocols.basic import LineReceiver


class SendAndCheck(LineReceiver):
    line = b"Hello from a client with a certificate"

    def connectionMade(self):
        self.done = defer.Deferred()
        self.sendLine(self.line)

    def lineReceived(self, line):
        print("receive:", line.decode(), flush=True)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if reason.check(ConnectionDone):
            self.done.callback(None)
        else:
            self.done.errback(reason)


async def main(reactor, args):
    with open(args.ca) as f:
        authority = ssl.Certificate.loadPEM(f.read())
    clientCertificate = None
    if args.cert:
        with open(args.cert) as f:
            clientCertificate = ssl.PrivateCertificate.loadPEM(f.read())
    options = ssl.optionsForClientTLS(
        args.hostname, authority, clientCertificate=clientCertificate
    )
    endpoint = endpoints.SSL4ClientEndpoint(reactor, args.host, args.port, options)
    client = await endpoint.connect(protocol.Factory.forProtocol(SendAndCheck))
    try:
        await client.done
    except Exception as e:  # noqa: BLE001 - any failure (TLS, verification, connection) is the one line printed
        print(f"connection failed: {e}", flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", help="client certificate and key (PEM)")
    parser.add_argument("--ca", default="ca.pem", help="the CA to trust (PEM)")
    parser.add_argument("--host", default="127.0.0.1", help="address to connect to")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--hostname", default="example.com", help="name to verify")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
