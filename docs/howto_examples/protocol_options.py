# howto_examples/protocol_options.py
"""Protocol options, and what a mistake looks like."""

import argparse

from tlsfast.options import ConfigurationError, ServerOptions

parser = argparse.ArgumentParser()
parser.add_argument("--cert", default="server.crt")
parser.add_argument("--key", default="server.key")
parser.add_argument("--other-cert", default="other.crt")
parser.add_argument("--other-key", default="other.key")
args = parser.parse_args()

options = ServerOptions(
    args.cert, args.key,
    minimumVersion="1.2",                        # the default
    maximumVersion="1.3",
    ciphers="ECDHE+AESGCM:ECDHE+CHACHA20",       # TLS 1.2 cipher string
    tls13Ciphers="TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
    groups="X25519MLKEM768:X25519:P-256",        # hybrid post-quantum first
    sessionTickets=True, sessionCache=True,      # the defaults
    serverNames={"*.other.test": (args.other_cert, args.other_key)},  # SNI
    handshakeTimeout=30, closeTimeout=10,        # seconds
)
print("built:", options.policy.groups.decode())

for mistake in (
    dict(minimumVersion="1.1"),
    dict(acceptableProtocols=["h2"]),
    dict(ciphers="ECDHE-RSA-AES128-GCM-SHA256", maximumVersion="1.2"),  # an RSA suite, an EC key
):
    try:
        ServerOptions(args.cert, args.key, **mistake)
    except ConfigurationError as e:
        print("refused:", e)
