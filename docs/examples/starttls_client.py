#!/usr/bin/env python
"""
A client that starts in plain text and upgrades with STARTTLS: Twisted's
starttls_client.py, with tlsfast.

    python starttls_client.py --ca ca.pem [--host 127.0.0.1] [--port 8000]
                              [--hostname example.com]
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task
from twisted.internet.interfaces import ISSLTransport
from twisted.protocols.basic import LineReceiver


class StartTLSClient(LineReceiver):
    def connectionMade(self):
        self.done = defer.Deferred()
        self.sendLine(b"plain text")
        self.sendLine(b"STARTTLS")

    def lineReceived(self, line):
        secure = "TLS" if ISSLTransport.providedBy(self.transport) else "plain"
        print(f"received ({secure}): {line.decode()}", flush=True)
        if line == b"READY":
            self.transport.startTLS(self.factory.options)
            self.sendLine(b"secure text")
        elif line == b"echo: secure text":
            engine = "tlsfast" if isinstance(
                self.transport.protocol, tlsfast.twisted.TLSMemoryBIOProtocol) else "Twisted"
            print(f"TLS by {engine}", flush=True)
            self.transport.loseConnection()

    def connectionLost(self, reason):
        self.done.callback(None)


async def main(reactor, args):
    with open(args.ca) as f:
        authority = ssl.Certificate.loadPEM(f.read())
    factory = protocol.Factory.forProtocol(StartTLSClient)
    factory.options = ssl.optionsForClientTLS(args.hostname, authority)
    endpoint = endpoints.TCP4ClientEndpoint(reactor, args.host, args.port)
    client = await endpoint.connect(factory)
    await client.done


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ca", default="ca.pem", help="the CA to trust (PEM)")
    parser.add_argument("--host", default="127.0.0.1", help="address to connect to")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--hostname", default="example.com", help="name to verify")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
