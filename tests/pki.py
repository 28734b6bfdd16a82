"""Throwaway PKI for tests: a CA and leaf certificates made with cryptography."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key(kind: str):
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Identity:
    """A certificate, its key, and PEM forms of both."""

    certificate: x509.Certificate
    key: object

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def certificate_authority(kind: str = "ecdsa", name: str = "tlsfast test CA") -> Identity:
    """The (cached) CA of that key kind and name."""
    return _certificate_authority(kind, name)


@cache
def _certificate_authority(kind: str, name: str) -> Identity:
    key = _key(kind)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(cert, key)


def leaf(kind: str = "ecdsa", names: tuple[str, ...] = ("example.com",),
         ca_kind: str = "ecdsa", ca_name: str = "tlsfast test CA",
         client: bool = False) -> Identity:
    """A (cached) leaf certificate for ``names`` issued by that CA."""
    return _leaf(kind, tuple(names), ca_kind, ca_name, client)


@cache
def _leaf(kind, names, ca_kind, ca_name, client) -> Identity:
    ca = certificate_authority(ca_kind, ca_name)
    key = _key(kind)
    now = datetime.datetime.now(datetime.UTC)
    alt_names = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Identity(cert, key)


def write_pems(directory: str, files: dict[str, bytes]) -> dict[str, str]:
    """Write each PEM as ``directory/NAME.pem``; return {name: path}."""
    import os

    paths = {}
    for name, content in files.items():
        path = os.path.join(directory, name + ".pem")
        with open(path, "wb") as f:
            f.write(content)
        paths[name] = path
    return paths
