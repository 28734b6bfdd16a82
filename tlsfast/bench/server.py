"""
Benchmark servers, one process each: ``python -m tlsfast.bench.server
--stack STACK --scenario SCENARIO --certs DIR``.  Prints ``READY <port>``
on stdout once listening, then serves until killed.

Stacks: ``tcp`` (Twisted, no TLS: the ceiling), ``twisted`` (stock Twisted
TLS), ``tlsfast`` (the same code after tlsfast.twisted.install()),
``asyncio`` (asyncio + stdlib ssl), ``uvloop`` (uvloop + stdlib ssl).
Scenarios: ``echo`` (echo everything back), ``sink`` (count bytes; answer
b"K" per completed block, see client.BULK_BLOCK), ``idle`` (hold connections).
"""

from __future__ import annotations

import argparse
import os
import sys

BULK_BLOCK = 1 << 20  # the sink acknowledges each MiB, so the client knows it arrived


def _twisted_server(stack: str, scenario: str, certs: str) -> None:
    if stack == "tlsfast":
        import tlsfast.twisted

        if not tlsfast.twisted.install():
            raise SystemExit("tlsfast acceleration is not available: " + "; ".join(
                __import__("tlsfast").backend_info().problems))
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import protocol, reactor, ssl

    class Echo(protocol.Protocol):
        def connectionMade(self):
            self.transport.setTcpNoDelay(True) if hasattr(self.transport, "setTcpNoDelay") else None

        def dataReceived(self, data):
            self.transport.write(data)

    class Sink(protocol.Protocol):
        received = 0

        def dataReceived(self, data):
            before = self.received // BULK_BLOCK
            self.received += len(data)
            acks = self.received // BULK_BLOCK - before
            if acks:
                self.transport.write(b"K" * acks)

    class Idle(protocol.Protocol):
        def dataReceived(self, data):
            self.transport.write(data)

    factory = protocol.Factory.forProtocol({"echo": Echo, "sink": Sink, "idle": Idle}[scenario])
    if stack == "tcp":
        port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")
    else:
        with open(os.path.join(certs, "server.pem"), "rb") as f:
            chain = f.read()
        with open(os.path.join(certs, "server.key"), "rb") as f:
            key = f.read()
        certificate = ssl.PrivateCertificate.loadPEM(key + chain)
        options = certificate.options()
        port = reactor.listenSSL(0, factory, options, backlog=1024, interface="127.0.0.1")
    print(f"READY {port.getHost().port}", flush=True)
    reactor.run()


def _asyncio_server(stack: str, scenario: str, certs: str) -> None:
    import asyncio
    import ssl

    if stack == "uvloop":
        import uvloop

        uvloop.install()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"))

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    class Sink(asyncio.Protocol):
        received = 0

        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            before = self.received // BULK_BLOCK
            self.received += len(data)
            acks = self.received // BULK_BLOCK - before
            if acks:
                self.transport.write(b"K" * acks)

    protocol_class = Sink if scenario == "sink" else Echo

    async def main():
        server = await asyncio.get_running_loop().create_server(
            protocol_class, "127.0.0.1", 0, ssl=context, backlog=1024)
        print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True, choices=["tcp", "twisted", "tlsfast", "asyncio", "uvloop"])
    parser.add_argument("--scenario", required=True, choices=["echo", "sink", "idle"])
    parser.add_argument("--certs", required=True)
    args = parser.parse_args(argv)
    if args.stack in ("asyncio", "uvloop"):
        _asyncio_server(args.stack, args.scenario, args.certs)
    else:
        _twisted_server(args.stack, args.scenario, args.certs)


if __name__ == "__main__":
    sys.exit(main())
