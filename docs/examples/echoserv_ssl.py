#!/usr/bin/env python
"""
A TLS echo server: Twisted's echoserv_ssl.py, with tlsfast.

    python echoserv_ssl.py --cert server.pem [--port 8000]

server.pem holds the server's certificate and private key (PEM).  With
--port 0 the system picks a free port; the line "listening on HOST:PORT"
says which.
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task


class Echo(protocol.Protocol):
    def connectionMade(self):
        ours = isinstance(self.transport, tlsfast.twisted.TLSMemoryBIOProtocol)
        engine = "tlsfast" if ours else "Twisted"
        print(f"connection from {self.transport.getPeer().host} (TLS by {engine})", flush=True)

    def dataReceived(self, data):
        self.transport.write(data)


async def main(reactor, args):
    with open(args.cert) as f:
        certificate = ssl.PrivateCertificate.loadPEM(f.read())
    endpoint = endpoints.SSL4ServerEndpoint(
        reactor, args.port, certificate.options(), interface=args.interface
    )
    port = await endpoint.listen(protocol.Factory.forProtocol(Echo))
    address = port.getHost()
    print(f"listening on {address.host}:{address.port}", flush=True)
    await defer.Deferred()  # serve until killed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", default="server.pem", help="certificate and key (PEM)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--interface", default="127.0.0.1")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
