# -*- test-case-name: tests.twisted -*-
"""
The tlsfast Twisted TLS classes.  They override Twisted's private TLS
internals, so they live in the seam, L{tlsfast._foreign.twistedtls}; this
module keeps their import path.
"""

from tlsfast._foreign.twistedtls import (
    BufferingTLSTransport,
    StockBufferingTLSTransport,
    StockTLSMemoryBIOFactory,
    StockTLSMemoryBIOProtocol,
    TLSConnectionObserver,
    TLSMemoryBIOFactory,
    TLSMemoryBIOProtocol,
    engineFor,
    engineOf,
)

__all__ = [
    "BufferingTLSTransport",
    "StockBufferingTLSTransport",
    "StockTLSMemoryBIOFactory",
    "StockTLSMemoryBIOProtocol",
    "TLSConnectionObserver",
    "TLSMemoryBIOFactory",
    "TLSMemoryBIOProtocol",
    "engineFor",
    "engineOf",
]
