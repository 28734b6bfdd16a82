"""
Benchmark servers, one process each: ``python -m tlsfast.bench.server
--stack STACK --scenario SCENARIO --certs DIR [--port N]``.  Prints
``READY <port>`` on stdout once listening (or ``ERROR <reason>`` and exits 3),
then serves until killed.  TLS stacks print ``NEGOTIATED <json>`` once, after
the first handshake.

Stacks: ``tcp`` (Twisted, no TLS: the ceiling), ``twisted`` (stock Twisted
TLS), ``tlsfast`` (the same code after tlsfast.twisted.install()),
``asyncio`` (asyncio + stdlib ssl), ``uvloop`` (uvloop + stdlib ssl).
Scenarios: ``echo`` (echo everything back), ``sink`` (count bytes; answer
b"K" per completed block, see client.BULK_BLOCK), ``idle`` (hold connections).

Twisted servers enable session tickets and the session cache
(``enableSessionTickets``, ``enableSessions``) so that resumed handshakes can
be measured; stdlib ``ssl`` servers issue tickets by default.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from tlsfast.bench.client import BULK_BLOCK

STACKS = ("tcp", "twisted", "tlsfast", "asyncio", "uvloop")


class _Acks:
    """What the sink owes the load generator: one b"K" per completed BULK_BLOCK."""

    def __init__(self) -> None:
        self.received = 0

    def add(self, count: int) -> bytes:
        """``count`` more bytes arrived: the acknowledgements now due."""
        before = self.received // BULK_BLOCK
        self.received += count
        return b"K" * (self.received // BULK_BLOCK - before)


def _ready(port: int) -> None:
    print(f"READY {port}", flush=True)


def _fail(reason: str) -> None:
    print(f"ERROR {reason}", flush=True)
    raise SystemExit(3)


def _twisted_server(args) -> None:
    if args.stack == "tlsfast":
        import tlsfast.twisted

        if not tlsfast.twisted.install():
            import tlsfast

            _fail("tlsfast acceleration is not available: " + "; ".join(tlsfast.backend_info().problems))
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import error, protocol, ssl
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor  # the installed epoll reactor; its interfaces are many
    reported: list[bool] = []

    def report(transport) -> None:
        if reported or args.stack == "tcp":
            return
        reported.append(True)
        from tlsfast.bench.tlsconfig import describe_pyopenssl

        try:
            connection = transport.getHandle()
            negotiated = dict(describe_pyopenssl(connection), mtls=connection.get_peer_certificate() is not None)
        except Exception as e:  # noqa: BLE001 - a transport without a pyOpenSSL Connection handle: report, don't fail
            negotiated = {"error": repr(e)}
        print("NEGOTIATED " + json.dumps(negotiated), flush=True)

    class Echo(protocol.Protocol):
        def connectionMade(self):
            if hasattr(self.transport, "setTcpNoDelay"):
                self.transport.setTcpNoDelay(True)

        def dataReceived(self, data):
            report(self.transport)
            self.transport.write(data)

    class Sink(protocol.Protocol):
        def connectionMade(self):
            self.acks = _Acks()

        def dataReceived(self, data):
            report(self.transport)
            acks = self.acks.add(len(data))
            if acks:
                self.transport.write(acks)

    factory = protocol.Factory.forProtocol({"echo": Echo, "sink": Sink, "idle": Echo}[args.scenario])
    try:
        if args.stack == "tcp":
            port = reactor.listenTCP(args.port, factory, backlog=1024, interface="127.0.0.1")
        else:
            from tlsfast.bench.tlsconfig import ConfigError, from_arguments, pin_context

            with open(os.path.join(args.certs, "server.pem"), "rb") as f:
                chain = f.read()
            with open(os.path.join(args.certs, "server.key"), "rb") as f:
                key = f.read()
            certificate = ssl.PrivateCertificate.loadPEM(key + chain)
            verify: dict[str, Any] = {}
            if args.mtls:
                with open(os.path.join(args.certs, "ca.pem"), "rb") as f:
                    ca = ssl.Certificate.loadPEM(f.read()).original
                verify = {"verify": True, "caCerts": [ca], "requireCertificate": True}
            options = ssl.CertificateOptions(
                privateKey=certificate.privateKey.original, certificate=certificate.original,
                enableSessions=True, enableSessionTickets=True, **verify)
            try:
                pin_context(options.getContext(), from_arguments(args))  # the context is cached
            except ConfigError as e:
                _fail(str(e))
            port = reactor.listenSSL(args.port, factory, options, backlog=1024, interface="127.0.0.1")
    except error.CannotListenError as e:
        _fail(f"cannot listen on 127.0.0.1:{args.port}: {e.socketError}")
    _ready(port.getHost().port)
    reactor.run()


def _asyncio_server(args) -> None:
    import asyncio
    import ssl

    if args.stack == "uvloop":
        try:
            import uvloop
        except ImportError:
            _fail("uvloop is not installed")
        uvloop.install()
    from tlsfast.bench.client import describe_stdlib, pin_stdlib

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(args.certs, "server.pem"), os.path.join(args.certs, "server.key"))
    pin_stdlib(context, args.tls_version, args.cipher)
    if args.mtls:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(os.path.join(args.certs, "ca.pem"))

    reported: list[bool] = []

    def report(transport) -> None:
        if not reported:
            reported.append(True)
            ssl_object = transport.get_extra_info("ssl_object")
            negotiated = dict(describe_stdlib(ssl_object), mtls=bool(ssl_object.getpeercert()))
            print("NEGOTIATED " + json.dumps(negotiated), flush=True)

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            report(self.transport)
            self.transport.write(data)

    class Sink(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.acks = _Acks()

        def data_received(self, data):
            report(self.transport)
            acks = self.acks.add(len(data))
            if acks:
                self.transport.write(acks)

    protocol_class = Sink if args.scenario == "sink" else Echo

    async def main():
        try:
            server = await asyncio.get_running_loop().create_server(
                protocol_class, "127.0.0.1", args.port, ssl=context, backlog=1024)
        except OSError as e:
            _fail(f"cannot listen on 127.0.0.1:{args.port}: {e.strerror or e}")
        _ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    from tlsfast.bench.tlsconfig import add_arguments

    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True, choices=STACKS)
    parser.add_argument("--scenario", required=True, choices=["echo", "sink", "idle"])
    parser.add_argument("--certs", required=True)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.stack in ("asyncio", "uvloop"):
        _asyncio_server(args)
    else:
        _twisted_server(args)


if __name__ == "__main__":
    main()
