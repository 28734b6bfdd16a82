"""A throwaway CA, server certificate (example.com) and client certificate for benchmark runs."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# --key-type -> a key generator.  The CA stays ECDSA P-256 whatever the leaf
# key: the key type under test is the one the server proves possession of.
KEYS: dict[str, Callable[[], CertificateIssuerPrivateKeyTypes]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa-4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def write_pki(directory: str, key_type: str = "ecdsa-p256") -> dict[str, str]:
    """Write ca.pem, server.pem (chain) and server.key, client.pem (chain) and
    client.key (for --mtls), leaf keys of ``key_type``; return their paths."""
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("tlsfast bench CA")).issuer_name(name("tlsfast bench CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name: str, usage, san: x509.GeneralName):
        key = KEYS[key_type]()
        certificate = (
            x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return key, certificate

    pem = serialization.Encoding.PEM
    paths = {name: os.path.join(directory, name)
             for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(pem))
    for role, usage, san in (("server", ExtendedKeyUsageOID.SERVER_AUTH, x509.DNSName("example.com")),
                             ("client", ExtendedKeyUsageOID.CLIENT_AUTH, x509.DNSName("client.example.com"))):
        key, certificate = leaf(f"{role}.example.com" if role == "client" else "example.com", usage, san)
        with open(paths[f"{role}.pem"], "wb") as f:
            f.write(certificate.public_bytes(pem) + ca.public_bytes(pem))
        with open(paths[f"{role}.key"], "wb") as f:
            f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths
