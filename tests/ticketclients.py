"""
A stdlib-ssl client in memory that counts the TLS 1.3 NewSessionTicket
messages it reads (as CPython's own tests count messages), for the ticket
tests of the options layer and of the Twisted drop-in.
"""

from __future__ import annotations

import ssl

from tests import pki

_NEW_SESSION_TICKET = ssl._TLSMessageType.NEWSESSION_TICKET


class TicketCountingClient:
    """
    One client connection; a subclass moves its bytes to and from the
    server under test in C{_flush} and says what an exchange is.
    """

    def __init__(self, context: ssl.SSLContext, session=None):
        self.tickets = 0
        context._msg_callback = self._message
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = context.wrap_bio(self.incoming, self.outgoing, server_hostname="example.com",
                                       session=session)

    def _message(self, connection, direction, version, contentType, messageType, data):
        if direction == "read" and messageType == _NEW_SESSION_TICKET:
            self.tickets += 1

    def _flush(self) -> None:
        raise NotImplementedError

    def handshake(self) -> None:
        for _ in range(5):
            try:
                self.client.do_handshake()
                return
            except ssl.SSLWantReadError:
                self._flush()

    def exchange(self) -> TicketCountingClient:
        raise NotImplementedError


def twoConnections(connect, version: str = "1.3"):
    """
    Two exchanges (C{connect(context, session)} makes a client) from one
    client context trusting the test CA, the second offering the first
    one's session.
    """
    context = ssl.create_default_context(cadata=pki.certificate_authority().cert_pem.decode())
    context.maximum_version = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    first = connect(context, None).exchange()
    second = connect(context, first.client.session).exchange()
    return first, second
