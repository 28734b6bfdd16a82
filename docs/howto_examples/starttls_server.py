# howto_examples/starttls_server.py
"""A line protocol that upgrades to TLS when the client says STARTTLS."""

import argparse

from twisted.internet import defer, task
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

from tlsfast.options import ServerOptions


class StartTLSServer(LineReceiver):
    def lineReceived(self, line):
        if line == b"STARTTLS":
            self.sendLine(b"READY")  # sent in the clear, before the switch
            self.transport.startTLS(self.factory.options)
        else:
            self.sendLine(b"secure: " + line)


def main(reactor, args):
    factory = Factory.forProtocol(StartTLSServer)
    factory.options = ServerOptions(args.cert, args.key)
    port = reactor.listenTCP(args.port, factory, interface="127.0.0.1")
    print(f"listening on 127.0.0.1:{port.getHost().port}", flush=True)
    return defer.Deferred()


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8025)
parser.add_argument("--cert", default="server.crt")
parser.add_argument("--key", default="server.key")
task.react(main, [parser.parse_args()])
