"""
A fix for Twisted's ALPN server callback, applied by L{install}.

Twisted's C{setupForALPN} (C{twisted.internet._sslverify}) installs an ALPN
select callback on every server context, and when nothing overlaps -- also
when the server was configured with no protocols at all -- it returns C{b""}.
pyOpenSSL 26 with OpenSSL 4 treats that as a fatal error, so a stock Twisted
TLS server without ALPN rejects every client that offers ALPN (curl fails
with "tlsv1 alert internal error").  pyOpenSSL's sentinel for "go on without
ALPN" is C{NO_OVERLAPPING_PROTOCOLS}.

The fixed callback returns that sentinel when this connection has no
acceptable protocols configured.  When protocols are configured and none
overlaps the handshake still fails, as in stock Twisted, but with the alert
RFC 7301 asks for (120 C{no_application_protocol}, not 80 C{internal_error}):
see L{tlsfast.options._alpn}.  Twisted's internals are reached through the
seam, L{tlsfast._foreign.twistedsslverify}; where its check fails the fix is
not installed.
"""

from __future__ import annotations

from tlsfast._foreign import twistedsslverify
from tlsfast.options._alpn import selectProtocol

stockSetupForALPN = twistedsslverify.stockSetupForALPN


def setupForALPN(context, acceptableProtocols):
    """
    L{twisted.internet._sslverify.setupForALPN}, accepting ALPN-offering
    clients when no protocol is configured.
    """

    def alpnSelect(connection, clientSentProtocols):
        tlsProtocol = connection.get_app_data()
        allAcceptable = twistedsslverify.protocolsFor(tlsProtocol, acceptableProtocols)
        return selectProtocol(allAcceptable, clientSentProtocols)

    context.set_alpn_select_callback(alpnSelect)


def installALPNFix() -> bool:
    """Install the fixed callback; C{False} where Twisted's internals differ."""
    return twistedsslverify.replaceSetupForALPN(setupForALPN)


def uninstallALPNFix() -> None:
    twistedsslverify.restoreSetupForALPN()
