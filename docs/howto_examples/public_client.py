# howto_examples/public_client.py
"""Fetch the status line of a public HTTPS server's answer, trusting the platform's CAs."""

import argparse

from twisted.internet import defer, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

from tlsfast.options import ClientOptions


class Head(LineReceiver):
    def __init__(self, name):
        self.name = name
        self.status = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b"GET / HTTP/1.1\r\nHost: " + self.name.encode()
                             + b"\r\nConnection: close\r\n\r\n")

    def lineReceived(self, line):
        if not self.status.called:
            self.status.callback(line)
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.status.called:
            self.status.errback(reason)


async def main(reactor, args):
    options = ClientOptions(args.name)  # the platform's CAs (certifi's if it has none)
    endpoint = SSL4ClientEndpoint(reactor, args.host or args.name, args.port, options)
    protocol = await connectProtocol(endpoint, Head(args.name))
    print((await protocol.status).decode(), flush=True)


parser = argparse.ArgumentParser()
parser.add_argument("name")
parser.add_argument("--host", help="address to connect to (default: the name)")
parser.add_argument("--port", type=int, default=443)
task.react(lambda reactor, args: defer.ensureDeferred(main(reactor, args)), [parser.parse_args()])
