# howto_examples/clientauth_server.py
"""A server that requires a client certificate issued by a given CA."""

import argparse

from twisted.internet import defer, task
from twisted.internet.protocol import Factory, Protocol

from tlsfast.options import ServerOptions


class Greeter(Protocol):
    def dataReceived(self, data):
        peer = self.transport.getPeerCertificate().to_cryptography()
        self.transport.write(b"hello, " + peer.subject.rfc4514_string().encode() + b"\n")
        self.transport.loseConnection()


def main(reactor, args):
    options = ServerOptions(args.cert, args.key, clientCertificate="required", caFile=args.ca)
    port = reactor.listenSSL(args.port, Factory.forProtocol(Greeter), options,
                             interface="127.0.0.1")
    print(f"listening on 127.0.0.1:{port.getHost().port}", flush=True)
    return defer.Deferred()


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8443)
parser.add_argument("--cert", default="server.crt")
parser.add_argument("--key", default="server.key")
parser.add_argument("--ca", default="ca.pem")
task.react(main, [parser.parse_args()])
