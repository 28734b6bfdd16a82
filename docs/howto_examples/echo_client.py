# howto_examples/echo_client.py
"""A TLS client that trusts one CA file and checks the server's name."""

import argparse

from twisted.internet import defer, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

from tlsfast.options import ClientOptions, connectionInfo


class Once(LineReceiver):
    def __init__(self):
        self.reply = defer.Deferred()

    def connectionMade(self):
        self.sendLine(b"hello, TLS")

    def lineReceived(self, line):
        info = connectionInfo(self.transport)
        print(line.decode(), "|", info.version, info.cipher, info.group, flush=True)
        self.transport.loseConnection()
        self.reply.callback(None)

    def connectionLost(self, reason):
        if not self.reply.called:  # e.g. the certificate did not verify
            self.reply.errback(reason)


async def main(reactor, args):
    # Connect to args.host, but require a certificate for args.name.
    options = ClientOptions(args.name, caFile=args.ca)
    endpoint = SSL4ClientEndpoint(reactor, args.host, args.port, options)
    protocol = await connectProtocol(endpoint, Once())
    await protocol.reply


parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8443)
parser.add_argument("--name", default="example.com")
parser.add_argument("--ca", default="ca.pem")
task.react(lambda reactor, args: defer.ensureDeferred(main(reactor, args)), [parser.parse_args()])
