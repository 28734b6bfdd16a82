#!/usr/bin/env python
"""
A TLS echo client: Twisted's echoclient_ssl.py, with tlsfast.

    python echoclient_ssl.py --ca ca.pem [--host 127.0.0.1] [--port 8000]
                             [--hostname example.com]

It connects to HOST:PORT, verifies that the server's certificate is valid
for HOSTNAME and issued by the CA in ca.pem (optionsForClientTLS), sends
three lines and prints what comes back.
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task
from twisted.protocols.basic import LineReceiver


class EchoClient(LineReceiver):
    end = b"Bye-bye!"

    def connectionMade(self):
        self.done = defer.Deferred()
        self.sendLine(b"Hello, world!")
        self.sendLine(b"What a fine day it is.")
        self.sendLine(self.end)

    def lineReceived(self, line):
        print("receive:", line.decode())
        if line == self.end:
            self.transport.loseConnection()

    def connectionLost(self, reason):
        self.done.callback(None)


async def main(reactor, args):
    with open(args.ca) as f:
        authority = ssl.Certificate.loadPEM(f.read())
    options = ssl.optionsForClientTLS(args.hostname, authority)
    endpoint = endpoints.SSL4ClientEndpoint(reactor, args.host, args.port, options)
    echoClient = await endpoint.connect(protocol.Factory.forProtocol(EchoClient))
    await echoClient.done


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ca", default="ca.pem", help="the CA to trust (PEM)")
    parser.add_argument("--host", default="127.0.0.1", help="address to connect to")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--hostname", default="example.com", help="name to verify")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
