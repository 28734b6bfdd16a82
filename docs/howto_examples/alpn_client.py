# howto_examples/alpn_client.py
"""A client offering protocols with ALPN."""

import argparse

from twisted.internet import defer, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from tlsfast.options import ClientOptions


class Show(Protocol):
    def __init__(self):
        self.done = defer.Deferred()

    def dataReceived(self, data):
        print(data.decode().strip(), "| negotiated:", self.transport.negotiatedProtocol, flush=True)

    def connectionLost(self, reason):
        self.done.callback(None)


async def main(reactor, args):
    offered = [p.encode() for p in args.protocols]
    options = ClientOptions(args.name, caFile=args.ca, acceptableProtocols=offered)
    endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", args.port, options)
    protocol = await connectProtocol(endpoint, Show())
    await protocol.done


parser = argparse.ArgumentParser()
parser.add_argument("protocols", nargs="*", default=["http/1.1"])
parser.add_argument("--port", type=int, default=8443)
parser.add_argument("--name", default="example.com")
parser.add_argument("--ca", default="ca.pem")
task.react(lambda reactor, args: defer.ensureDeferred(main(reactor, args)), [parser.parse_args()])
