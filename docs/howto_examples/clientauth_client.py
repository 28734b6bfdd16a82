# howto_examples/clientauth_client.py
"""A client presenting its certificate."""

import argparse

from twisted.internet import defer, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from tlsfast.options import ClientOptions


class Hello(Protocol):
    def __init__(self):
        self.done = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b"hi\n")

    def dataReceived(self, data):
        print(data.decode().strip(), flush=True)

    def connectionLost(self, reason):
        self.done.callback(None)


async def main(reactor, args):
    options = ClientOptions(args.name, caFile=args.ca,
                            clientCertificate=args.cert, clientKey=args.key)
    endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", args.port, options)
    protocol = await connectProtocol(endpoint, Hello())
    await protocol.done


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8443)
parser.add_argument("--name", default="example.com")
parser.add_argument("--ca", default="ca.pem")
parser.add_argument("--cert", default="client.crt")
parser.add_argument("--key", default="client.key")
task.react(lambda reactor, args: defer.ensureDeferred(main(reactor, args)), [parser.parse_args()])
