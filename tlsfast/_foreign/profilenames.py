"""
The names of Twisted's, pyOpenSSL's and the seam's functions that the
per-connection breakdown (L{tlsfast.bench.phases}) charges to a phase.

Data only: a profile rule matches a function by the file it is defined in
and its qualified name, so these are private names by string.  A rename in
a new Twisted or pyOpenSSL only mis-charges a profile; it breaks nothing.
C{tests/test_bench_breakdown.py} checks that every rule still names a
function that exists.
"""

from __future__ import annotations

# (file the function is defined in, ending with; qualified name) -> phase.
# Python functions are matched by file and co_qualname, C functions by module
# and __qualname__ (the file column then holds the module).
PHASE_RULES: dict[tuple[str, str], str] = {
    # accept (server side) and connect (client side, proxy -> backend)
    ("internet/tcp.py", "Port.doRead"): "accept/connect",
    ("internet/tcp.py", "BaseClient.doConnect"): "accept/connect",
    ("_foreign/twistedtcp.py", "DirectClient.doConnect"): "accept/connect",
    ("internet/tcp.py", "BaseClient.createInternetSocket"): "accept/connect",
    ("internet/tcp.py", "Client.__init__"): "accept/connect",
    ("internet/tcp.py", "BaseClient._finishInit"): "accept/connect",
    ("internet/tcp.py", "Connector.__init__"): "accept/connect",
    ("internet/base.py", "BaseConnector.connect"): "accept/connect",
    ("internet/posixbase.py", "PosixReactorBase.connectTCP"): "accept/connect",
    ("internet/posixbase.py", "PosixReactorBase.connectSSL"): "accept/connect",
    # the SSL object, its BIOs, the engine and the TLS protocol around them
    ("protocols/tls.py", "TLSMemoryBIOProtocol.makeConnection"): "setup",
    ("protocols/tls.py", "TLSMemoryBIOFactory.buildProtocol"): "setup",
    ("_foreign/twistedtls.py", "TLSMemoryBIOProtocol.makeConnection"): "setup",
    ("_foreign/twistedtls.py", "engineFor"): "setup",
    ("internet/_sslverify.py", "OpenSSLCertificateOptions.getContext"): "setup",
    ("internet/_sslverify.py", "ClientTLSOptions.clientConnectionForTLS"): "setup",
    ("internet/_sslverify.py", "OpenSSLCertificateOptions.serverConnectionForTLS"): "setup",
    ("internet/_sslverify.py", "OpenSSLCertificateOptions.clientConnectionForTLS"): "setup",
    ("OpenSSL/SSL.py", "Connection.__init__"): "setup",
    # the handshake and the TLS record paths
    ("protocols/tls.py", "TLSMemoryBIOProtocol._checkHandshakeStatus"): "handshake+records",
    ("protocols/tls.py", "TLSMemoryBIOProtocol.dataReceived"): "handshake+records",
    ("protocols/tls.py", "TLSMemoryBIOProtocol._write"): "handshake+records",
    ("protocols/tls.py", "TLSMemoryBIOProtocol.write"): "handshake+records",
    ("_foreign/twistedtls.py", "TLSMemoryBIOProtocol._checkHandshakeStatus"): "handshake+records",
    ("_foreign/twistedtls.py", "TLSMemoryBIOProtocol.dataReceived"): "handshake+records",
    ("_foreign/twistedtls.py", "TLSMemoryBIOProtocol._write"): "handshake+records",
    ("OpenSSL/SSL.py", "Connection.do_handshake"): "handshake+records",
    # Python called back: OpenSSL's info/ALPN/SNI/verify callbacks, the
    # application's (and the proxy relay's) protocol methods
    ("OpenSSL/SSL.py", "_InfoCallbackHelper.__init__.<locals>.wrapper"): "callbacks",
    ("OpenSSL/SSL.py", "_VerifyHelper.__init__.<locals>.wrapper"): "callbacks",
    ("OpenSSL/SSL.py", "_ALPNSelectHelper.__init__.<locals>.wrapper"): "callbacks",
    ("OpenSSL/SSL.py", "Context.set_tlsext_servername_callback.<locals>.wrapper"): "callbacks",
    ("internet/_sslverify.py", "_verifyCB.<locals>.verifyCallback"): "callbacks",
    ("_foreign/pyopenssl.py", "installFilteredInfoCallback.<locals>.filtered"): "callbacks",
    ("protocols/tls.py", "TLSMemoryBIOProtocol._handshakeDone"): "callbacks",
    ("_foreign/twistedtls.py", "TLSMemoryBIOProtocol._handshakeCompleted"): "callbacks",
    ("_foreign/twistedtls.py", "TLSMemoryBIOProtocol._deliverToApplication"): "callbacks",
    ("protocols/tls.py", "TLSMemoryBIOProtocol._flushReceiveBIO"): "callbacks",
    # teardown
    ("internet/tcp.py", "Connection.connectionLost"): "close",
    ("internet/tcp.py", "Connection.readConnectionLost"): "close",
    ("internet/tcp.py", "BaseClient.connectionLost"): "close",
    ("internet/abstract.py", "FileDescriptor.loseConnection"): "close",
    ("internet/posixbase.py", "_DisconnectSelectableMixin._disconnectSelectable"): "close",
    ("protocols/tls.py", "TLSMemoryBIOProtocol.loseConnection"): "close",
    ("protocols/tls.py", "TLSMemoryBIOProtocol._shutdownTLS"): "close",
    ("protocols/tls.py", "TLSMemoryBIOProtocol.connectionLost"): "close",
    ("_foreign/twistedtls.py", "TLSMemoryBIOProtocol.connectionLost"): "close",
    ("OpenSSL/SSL.py", "Connection.shutdown"): "close",
}
