#!/usr/bin/env python
"""
A line server that switches to TLS on the command STARTTLS: Twisted's
starttls_server.py, with tlsfast (ITLSTransport.startTLS is covered by
install()).

    python starttls_server.py --cert server.pem [--port 8000]

Every line is echoed back as "echo: LINE", before and after STARTTLS.
"""

import argparse

import tlsfast.twisted

tlsfast.twisted.install()

from twisted.internet import defer, endpoints, protocol, ssl, task
from twisted.internet.interfaces import ISSLTransport
from twisted.protocols.basic import LineReceiver


class TLSServer(LineReceiver):
    def lineReceived(self, line):
        secure = "TLS" if ISSLTransport.providedBy(self.transport) else "plain"
        print(f"received ({secure}): {line.decode()}", flush=True)
        if line == b"STARTTLS":
            print("-- Switching to TLS", flush=True)
            self.sendLine(b"READY")
            self.transport.startTLS(self.factory.options)
        else:
            self.sendLine(b"echo: " + line)


async def main(reactor, args):
    with open(args.cert) as f:
        certificate = ssl.PrivateCertificate.loadPEM(f.read())
    factory = protocol.Factory.forProtocol(TLSServer)
    factory.options = certificate.options()
    endpoint = endpoints.TCP4ServerEndpoint(reactor, args.port, interface=args.interface)
    port = await endpoint.listen(factory)
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
