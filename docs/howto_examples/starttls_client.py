# howto_examples/starttls_client.py
"""Connect in the clear, ask for STARTTLS, then talk over TLS."""

import argparse

from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

from tlsfast.options import ClientOptions


class StartTLSClient(LineReceiver):
    def __init__(self, options):
        self.options = options
        self.done = defer.Deferred()

    def connectionMade(self):
        self.sendLine(b"STARTTLS")

    def lineReceived(self, line):
        if line == b"READY":
            self.transport.startTLS(self.options)
            self.sendLine(b"hello")  # goes out encrypted
        else:
            print(line.decode(), flush=True)
            self.transport.loseConnection()
            self.done.callback(None)


async def main(reactor, args):
    options = ClientOptions(args.name, caFile=args.ca)
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", args.port)
    protocol = await connectProtocol(endpoint, StartTLSClient(options))
    await protocol.done


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8025)
parser.add_argument("--name", default="example.com")
parser.add_argument("--ca", default="ca.pem")
task.react(lambda reactor, args: defer.ensureDeferred(main(reactor, args)), [parser.parse_args()])
