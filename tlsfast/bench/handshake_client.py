"""
Client-side handshake load, the measured process of the ``handshake-client``
scenario (and of ``tlsfast bench breakdown client``):

    python -m tlsfast.bench.handshake_client --stack STACK --port P --ca CA.pem
        [--seconds S] [--warmup W] [--resume] [--forever]

Connections one after another to a fixed TLS echo server: connect, TLS
handshake, 1 byte each way, close.  After ``--warmup`` seconds it counts
``--seconds`` seconds of them (printing ``COUNTING`` as it starts) and then
one JSON line: ``ops``, ``seconds``,
``cpu_seconds`` (this process's CPU time over the counted connections only,
so imports and start-up are left out), ``resumed`` and ``negotiated``.
``--forever`` never stops (the breakdown measures it from outside).

Stacks: ``tcp`` (Twisted, no TLS: the ceiling), ``twisted`` (stock Twisted
TLS), ``tlsfast`` (the same after ``tlsfast.twisted.install()``),
``asyncio`` and ``uvloop`` (stdlib ssl).  Twisted stacks make full handshakes
with Twisted's own ``optionsForClientTLS``, which never resumes; with
``--resume`` they use :class:`tlsfast.options.ClientOptions` and its session
cache, so each connection resumes the previous one's session.  asyncio
cannot offer a session to resume (see :mod:`tlsfast.bench.client`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

# no reactor import: the Twisted stacks choose and install theirs
from twisted.internet.protocol import ClientFactory, Protocol

STACKS = ("tcp", "twisted", "tlsfast", "asyncio", "uvloop")
RESUMABLE = ("twisted", "tlsfast")  # the stacks that take --resume
HOSTNAME = "example.com"


class _Tally:
    """Counts connections once the warm-up is over, and the CPU they used."""

    def __init__(self, warmup: float, seconds: float | None):
        self.warmEnd = time.monotonic() + warmup
        self.seconds = seconds
        self.ops = self.resumed = 0
        self.negotiated: dict = {}
        self.started: tuple[float, float] | None = None  # (monotonic, process CPU) when counting began

    def done(self, resumed: bool) -> bool:
        """One connection closed; whether to stop."""
        now = time.monotonic()
        if self.started is None:
            if now >= self.warmEnd:
                self.started = (now, time.process_time())
                print("COUNTING", flush=True)  # for whoever waits for the warm-up to end
            return False
        self.ops += 1
        self.resumed += resumed
        return self.seconds is not None and now - self.started[0] >= self.seconds

    def result(self) -> dict:
        assert self.started is not None, "stopped before the warm-up ended"
        return {"ops": self.ops, "seconds": time.monotonic() - self.started[0],
                "cpu_seconds": time.process_time() - self.started[1], "resumed": self.resumed,
                "negotiated": self.negotiated}


class _OneByte(Protocol):
    """1 byte out, 1 back, close; the factory starts the next connection."""

    factory: _Loop
    answered = False

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)
        self.transport.write(b"h")

    def dataReceived(self, data):
        self.answered = True
        self.factory.answered(self.transport)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if self.answered:
            self.factory.next()
        else:
            self.factory.failed(f"the server closed before answering: {reason.getErrorMessage()}")


class _Loop(ClientFactory):
    def __init__(self, reactor, connect, tally: _Tally, tls: bool):
        self.reactor, self.connect, self.tally, self.tls = reactor, connect, tally, tls
        self.lastResumed = False
        self.failure: str | None = None

    def buildProtocol(self, addr):
        protocol = _OneByte()
        protocol.factory = self
        return protocol

    def answered(self, transport) -> None:
        if not self.tls:
            return
        from tlsfast.options import connectionInfo

        info = connectionInfo(transport)
        self.lastResumed = bool(info and info.resumed)
        if not self.tally.negotiated:
            from tlsfast.bench.tlsconfig import describe_pyopenssl

            self.tally.negotiated.update(describe_pyopenssl(transport.getHandle()))

    def next(self) -> None:
        if self.tally.done(self.lastResumed):
            self.reactor.stop()
        else:
            self.reactor.callLater(0, self.connect)

    def failed(self, why: str) -> None:
        self.failure = why
        self.reactor.stop()

    def clientConnectionFailed(self, connector, reason):
        self.failed(f"cannot connect: {reason.getErrorMessage()}")


def _twisted(args, tally: _Tally) -> None:
    if args.stack == "tlsfast":
        import tlsfast.twisted

        if not tlsfast.twisted.install():
            raise SystemExit("tlsfast acceleration is not available")
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor as _reactor
    from twisted.internet import ssl

    reactor: Any = _reactor
    factory: _Loop
    if args.stack == "tcp":
        def connect() -> None:
            reactor.connectTCP(args.host, args.port, factory)
    else:
        if args.resume:
            from tlsfast.options import ClientOptions

            options: Any = ClientOptions(HOSTNAME, caFile=args.ca, keyLogFile=False)
        else:
            with open(args.ca, "rb") as f:
                options = ssl.optionsForClientTLS(HOSTNAME, trustRoot=ssl.Certificate.loadPEM(f.read()))

        def connect() -> None:
            reactor.connectSSL(args.host, args.port, factory, options)

    factory = _Loop(reactor, connect, tally, args.stack != "tcp")
    connect()
    reactor.run()
    if factory.failure:
        raise SystemExit(f"handshake client ({args.stack}): {factory.failure}")


def _asyncio(args, tally: _Tally) -> None:
    import asyncio
    import ssl

    from tlsfast.bench.client import describe_stdlib, pin_stdlib

    if args.stack == "uvloop":
        import uvloop

        uvloop.install()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(args.ca)
    pin_stdlib(context, args.tls_version, args.cipher)

    async def loop() -> None:
        while True:
            reader, writer = await asyncio.open_connection(args.host, args.port, ssl=context,
                                                           server_hostname=HOSTNAME)
            writer.write(b"h")
            await reader.readexactly(1)
            if not tally.negotiated:
                tally.negotiated.update(describe_stdlib(writer.get_extra_info("ssl_object")))
            writer.close()
            await writer.wait_closed()
            if tally.done(False):
                return

    asyncio.run(loop())


def main(argv: list[str] | None = None) -> int:
    from tlsfast.bench.tlsconfig import add_arguments

    parser = argparse.ArgumentParser(prog="python -m tlsfast.bench.handshake_client")
    parser.add_argument("--stack", required=True, choices=STACKS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--resume", action="store_true", help=f"resume sessions ({', '.join(RESUMABLE)} only)")
    parser.add_argument("--forever", action="store_true", help="never stop (measured from outside)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.resume and args.stack not in RESUMABLE:
        parser.error(f"--resume: only {', '.join(RESUMABLE)}")
    tally = _Tally(args.warmup, None if args.forever else args.seconds)
    if args.stack in ("asyncio", "uvloop"):
        _asyncio(args, tally)
    else:
        _twisted(args, tally)
    print(json.dumps(tally.result()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
