# howto_examples/echo_server.py
"""A TLS echo server: certificate and key from PEM files."""

import argparse

from twisted.internet import defer, task
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

from tlsfast.options import ServerOptions


class Echo(LineReceiver):
    def lineReceived(self, line):
        self.sendLine(line)


def main(reactor, args):
    options = ServerOptions(args.cert, args.key)  # checked here, not at the first client
    port = reactor.listenSSL(args.port, Factory.forProtocol(Echo), options,
                             interface="127.0.0.1")
    print(f"listening on 127.0.0.1:{port.getHost().port}", flush=True)
    return defer.Deferred()  # serve until killed


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8443)
parser.add_argument("--cert", default="server.crt")
parser.add_argument("--key", default="server.key")
task.react(main, [parser.parse_args()])
