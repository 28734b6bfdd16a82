#!/usr/bin/env python
"""
A TLS client that offers application protocols with ALPN: Twisted's
tls_alpn_client.py, with tlsfast.

    python tls_alpn_client.py --ca ca.pem [--host 127.0.0.1] [--port 8000]
        [--hostname example.com] [--protocols h2,http/1.1]

It prints the protocol chosen and the server's message.  Exits with status 1
if the handshake fails (e.g. no protocol in common).
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHandshakeListener
from zope.interface import implementer


@implementer(IHandshakeListener)
class BasicClient(protocol.Protocol):
    def connectionMade(self):
        self.done = defer.Deferred()

    def handshakeCompleted(self):
        negotiated = self.transport.negotiatedProtocol
        print(f"Next protocol is: {negotiated.decode() if negotiated else None}", flush=True)

    def dataReceived(self, data):
        print("receive:", data.decode().strip(), flush=True)

    def connectionLost(self, reason):
        if reason.check(ConnectionDone):
            self.done.callback(None)
        else:
            self.done.errback(reason)


async def main(reactor, args):
    with open(args.ca) as f:
        authority = ssl.Certificate.loadPEM(f.read())
    options = ssl.optionsForClientTLS(
        args.hostname, authority,
        acceptableProtocols=[p.encode() for p in args.protocols.split(",")],
    )
    endpoint = endpoints.SSL4ClientEndpoint(reactor, args.host, args.port, options)
    client = await endpoint.connect(protocol.Factory.forProtocol(BasicClient))
    try:
        await client.done
    except Exception as e:  # noqa: BLE001 - any failure (TLS, verification, connection) is the one line printed
        print(f"connection failed: {e}", flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ca", default="ca.pem", help="the CA to trust (PEM)")
    parser.add_argument("--host", default="127.0.0.1", help="address to connect to")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--hostname", default="example.com", help="name to verify")
    parser.add_argument("--protocols", default="h2,http/1.1", help="in order of preference")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
