# howto_examples/sans_io.py
"""The same options without Twisted: two tlsfast engines talking in memory."""

import argparse

from OpenSSL import SSL

from tlsfast import TLSEngine
from tlsfast.options import ClientOptions, ServerOptions, connectionInfo

parser = argparse.ArgumentParser()
parser.add_argument("--cert", default="server.crt")
parser.add_argument("--key", default="server.key")
parser.add_argument("--ca", default="ca.pem")
args = parser.parse_args()

server_options = ServerOptions(args.cert, args.key, acceptableProtocols=[b"h2"])
client_options = ClientOptions("example.com", caFile=args.ca, acceptableProtocols=[b"h2"])

for attempt in (1, 2):
    client = TLSEngine(client_options.newConnection(port=443))  # port: the session-cache key
    server = TLSEngine(server_options.newConnection())
    client.do_handshake()
    # Move ciphertext until both sides are quiet; a socket would carry it.
    while (to_server := client.outgoing()) or (to_client := server.outgoing()):
        if to_server:
            server.receive(to_server)
        else:
            client.receive(to_client)
    print(server.receive(client.send(b"ping")), client.receive(server.send(b"pong")))
    info = connectionInfo(client.connection)
    print(f"attempt {attempt}: {info.version} {info.group} alpn={info.alpn} resumed={info.resumed}")
    # close_notify each way: a session is only resumable after a clean close.
    for closing, peer in ((client, server), (server, client)):
        closing.shutdown()
        try:
            peer.receive(closing.outgoing())
        except SSL.ZeroReturnError:  # the peer's close_notify: a clean end
            pass
