# howto_examples/alpn_server.py
"""A server speaking two protocols over one port, chosen with ALPN."""

import argparse

from twisted.internet import defer, task
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from tlsfast.options import ServerOptions


@implementer(IHandshakeListener)
class Negotiated(Protocol):
    def handshakeCompleted(self):
        protocol = self.transport.negotiatedProtocol  # None: the client offered no ALPN
        self.transport.write(b"you chose " + (protocol or b"nothing") + b"\n")
        self.transport.loseConnection()


def main(reactor, args):
    options = ServerOptions(args.cert, args.key, acceptableProtocols=[b"h2", b"http/1.1"])
    port = reactor.listenSSL(args.port, Factory.forProtocol(Negotiated), options,
                             interface="127.0.0.1")
    print(f"listening on 127.0.0.1:{port.getHost().port}", flush=True)
    return defer.Deferred()


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8443)
parser.add_argument("--cert", default="server.crt")
parser.add_argument("--key", default="server.key")
task.react(main, [parser.parse_args()])
