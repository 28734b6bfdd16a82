"""
Accepting the PROXY protocol (v1 or v2) from a load balancer in front.

Behind an L4 balancer every connection comes from the balancer's address.
Balancers that speak the PROXY protocol (haproxy ``send-proxy``, AWS NLB,
Envoy, nginx ``proxy_protocol on``) start each connection with a header
naming the client.  On a listener with ``accept_proxy``, L{ProxyHeaderReceiver}
reads that header before anything else -- before TLS -- and only then
connects the rest of the stack, whose C{getPeer()}/C{getHost()} are then the
client's and the original destination: in the logs, in the metrics' view and
in a PROXY header sent on to the backend.

Framing (where the header ends) is done here; the header itself is parsed
by the C{proxy-protocol} package.  A connection that does not start with a
valid header, or does not finish it within C{proxy_header_timeout}, is closed
without a reply: the proxy must not guess (a missing header on such a
listener is a misconfigured balancer, or someone bypassing it).  A C{LOCAL}
(v2) or C{UNKNOWN} (v1) header -- a balancer's own health check -- keeps the
connection's own addresses.
"""

from __future__ import annotations

import struct

from proxyprotocol import ProxyProtocol, ProxyProtocolIncompleteError
from proxyprotocol.result import ProxyResultIPv4, ProxyResultIPv6
from proxyprotocol.v1 import ProxyProtocolV1
from proxyprotocol.v2 import ProxyProtocolV2
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import implementer

from tlsfast.proxy._deadlines import deadlinesFor

V1_SIGNATURE = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX_LENGTH = 107  # the longest valid v1 line, CRLF included (the spec's limit)


class ProxyHeaderError(ValueError):
    """The connection did not start with a valid PROXY protocol header."""


def splitHeader(data: bytes):
    """
    C{(result, rest)} once C{data} holds a whole PROXY header: the
    C{proxy-protocol} result and the bytes after the header.  L{None} while
    more bytes are needed.  Raises L{ProxyHeaderError} as soon as C{data}
    cannot be the start of a header.
    """
    parser: ProxyProtocol
    if data.startswith(V1_SIGNATURE):
        end = data.find(b"\r\n", 0, V1_MAX_LENGTH)
        if end < 0:
            if len(data) >= V1_MAX_LENGTH:
                raise ProxyHeaderError(f"PROXY v1 line longer than {V1_MAX_LENGTH} bytes")
            return None
        header, parser = data[:end + 2], ProxyProtocolV1()
    elif data.startswith(V2_SIGNATURE):
        if len(data) < 16:
            return None
        end = 16 + int.from_bytes(data[14:16], "big")
        if len(data) < end:
            return None
        header, parser = data[:end], ProxyProtocolV2()
    elif V1_SIGNATURE.startswith(data[:len(V1_SIGNATURE)]) or V2_SIGNATURE.startswith(data[:len(V2_SIGNATURE)]):
        return None  # a prefix of a signature so far
    else:
        raise ProxyHeaderError(f"no PROXY protocol header (starts with {bytes(data[:8])!r})")
    try:
        result = parser.unpack(header)
    except ProxyProtocolIncompleteError:  # the framing above says it is whole
        raise ProxyHeaderError("PROXY header ends early") from None
    except (ValueError, KeyError, IndexError, TypeError, struct.error) as e:
        # The package's own errors are ValueErrors; a short or odd address
        # block surfaces as whatever its unpacking raised (struct.error...).
        raise ProxyHeaderError(f"invalid PROXY header: {type(e).__name__}: {e}") from None
    return result, data[len(header):]


def _addresses(result):
    """(peer, host) Twisted addresses from a proxied header, or (None, None) for LOCAL/UNKNOWN."""
    if isinstance(result, ProxyResultIPv4):
        kind = IPv4Address
    elif isinstance(result, ProxyResultIPv6):
        kind = IPv6Address
    else:
        return None, None
    (sourceIP, sourcePort), (destIP, destPort) = result.source, result.dest
    return kind("TCP", str(sourceIP), sourcePort), kind("TCP", str(destIP), destPort)


class ProxyHeaderReceiver(ProtocolWrapper):
    """
    Reads the PROXY header, then connects the wrapped protocol (a TLS
    protocol or a plain L{Frontend}) with this wrapper as its transport.
    """

    def __init__(self, factory, wrappedProtocol):
        super().__init__(factory, wrappedProtocol)
        self._buffer = b""
        self._headerDone = False
        self._timer = None
        self._failed = False
        self._peer = self._host = None

    def makeConnection(self, transport):
        # Only this wrapper is connected now; the stack above waits for the header.
        Protocol.makeConnection(self, transport)

    def connectionMade(self):
        if self._headerDone:  # ProtocolWrapper.makeConnection, once the header is in
            return
        listener = self.factory.listener
        listener.headerWaitStarted(self)
        self._timer = deadlinesFor(listener.reactor).callLater(listener.config.proxyHeaderTimeout, self._timedOut)

    def dataReceived(self, data):
        if self._headerDone:
            self.wrappedProtocol.dataReceived(data)
            return
        self._buffer += data
        try:
            found = splitHeader(self._buffer)
        except ProxyHeaderError as e:
            self._fail(str(e))
            return
        if found is None:
            return
        result, rest = found
        self._buffer = b""
        self._headerDone = True
        self._stopWaiting()
        self._peer, self._host = _addresses(result)
        ProtocolWrapper.makeConnection(self, self.transport)
        if rest and self.connected and not self.disconnecting:
            self.wrappedProtocol.dataReceived(rest)

    def _timedOut(self):
        self._timer = None
        self._fail(f"no complete PROXY header after {self.factory.listener.config.proxyHeaderTimeout} s")

    def _fail(self, why: str) -> None:
        self._report(why)
        self.transport.abortConnection()  # type: ignore[union-attr]  # a connected TCP transport (ITCPTransport)

    def _report(self, why: str) -> None:
        self._stopWaiting()
        if self._failed:
            return
        self._failed = True
        self.factory.listener.proxyHeaderFailed(self, why)

    def _stopWaiting(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self in self.factory.listener.awaitingHeader:
            self.factory.listener.headerWaitEnded(self)

    def getPeer(self):
        return self._peer if self._peer is not None else self.transport.getPeer()

    def getHost(self):
        return self._host if self._host is not None else self.transport.getHost()

    def connectionLost(self, reason):
        if self._headerDone:
            ProtocolWrapper.connectionLost(self, reason)
            return
        # The stack above was never connected: nothing to tell it.  A peer
        # that closes without sending a byte is a balancer's TCP health
        # check, not a failure; one that stops inside the header is.
        if self._buffer:
            self._report("connection closed inside the PROXY header")
        self._stopWaiting()


@implementer(IHalfCloseableProtocol)
class HalfCloseableProxyHeaderReceiver(ProxyHeaderReceiver):
    """For a plain (half-closeable) L{Frontend}: FIN and write-shutdown passed on."""

    def readConnectionLost(self):
        if self._headerDone:
            self.wrappedProtocol.readConnectionLost()
        else:
            self.transport.loseConnection()  # connectionLost says whether it was a failure

    def writeConnectionLost(self):
        if self._headerDone:
            self.wrappedProtocol.writeConnectionLost()


class ProxyHeaderFactory(WrappingFactory):
    """Wraps a listener's factory (its TLS factory, or the L{Listener} itself)."""

    noisy = False

    def __init__(self, wrappedFactory, listener):
        super().__init__(wrappedFactory)
        self.listener = listener

    def buildProtocol(self, addr):
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            return None
        if IHalfCloseableProtocol.providedBy(wrapped):
            return HalfCloseableProxyHeaderReceiver(self, wrapped)
        return ProxyHeaderReceiver(self, wrapped)
