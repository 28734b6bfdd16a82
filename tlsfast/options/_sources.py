"""
Turning what users hold -- PEM paths or bytes, C{cryptography} objects,
pyOpenSSL objects, Twisted's L{Certificate} / L{PrivateCertificate} -- into
C{cryptography} certificates and keys, checking them on the way.
"""

from __future__ import annotations

import datetime
import os
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from OpenSSL import crypto

from tlsfast.options._errors import CertificateValidityWarning, ConfigurationError

_PRIVATE_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)


def _isPath(source) -> bool:
    return isinstance(source, (str, os.PathLike))


def _readBytes(source, what: str) -> tuple[bytes, str]:
    """(content, description) of a path or bytes source."""
    if _isPath(source):
        path = os.fspath(source)
        try:
            with open(path, "rb") as f:
                return f.read(), f"{what} file {path!r}"
        except OSError as e:
            raise ConfigurationError(f"cannot read {what} file {path!r}: {e.strerror or e}") from e
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), f"{what} bytes"
    raise ConfigurationError(
        f"{what}: expected a path, PEM bytes or a certificate/key object, "
        f"got {type(source).__name__}"
    )


def _twistedOriginal(source):
    """The pyOpenSSL object inside a Twisted Certificate/KeyPair, if any."""
    try:
        from twisted.internet.ssl import Certificate, KeyPair
    except ImportError:  # pragma: no cover - Twisted is a dependency
        return None
    if isinstance(source, (Certificate, KeyPair)):
        return source.original
    return None


def loadCertificates(source, what: str = "certificate") -> list[x509.Certificate]:
    """
    All certificates in C{source}: a path, PEM or DER bytes, a
    C{cryptography} / pyOpenSSL / Twisted certificate, or a list of these.

    @raise ConfigurationError: unreadable, or holds no certificate.
    """
    if isinstance(source, (list, tuple)):
        return [c for item in source for c in loadCertificates(item, what)]
    if isinstance(source, x509.Certificate):
        return [source]
    if isinstance(source, crypto.X509):
        return [source.to_cryptography()]
    original = _twistedOriginal(source)
    if original is not None:
        if isinstance(original, crypto.X509):
            return [original.to_cryptography()]
        raise ConfigurationError(f"{what}: {type(source).__name__} holds no certificate")
    content, description = _readBytes(source, what)
    if b"-----BEGIN" in content:
        try:
            certificates = x509.load_pem_x509_certificates(content)
        except ValueError as e:
            if b"CERTIFICATE-----" not in content:
                raise ConfigurationError(f"{description} contains no PEM certificate") from e
            raise ConfigurationError(f"{description} holds a malformed certificate: {e}") from e
        return certificates
    try:
        return [x509.load_der_x509_certificate(content)]
    except ValueError as e:
        raise ConfigurationError(
            f"{description} is neither PEM nor a DER certificate: {e}"
        ) from e


def loadPrivateKey(source, password: bytes | None = None, what: str = "private key"):
    """
    The private key in C{source}: a path, PEM or DER bytes, a
    C{cryptography} private key, a pyOpenSSL C{PKey} or a Twisted
    C{KeyPair} / C{PrivateCertificate}.

    @raise ConfigurationError: unreadable, encrypted without the right
        password, or holds no private key.
    """
    if isinstance(source, _PRIVATE_KEY_TYPES):
        return source
    if isinstance(source, crypto.PKey):
        return source.to_cryptography_key()
    from twisted.internet.ssl import PrivateCertificate

    if isinstance(source, PrivateCertificate):
        return source.privateKey.original.to_cryptography_key()
    original = _twistedOriginal(source)
    if isinstance(original, crypto.PKey):
        return original.to_cryptography_key()
    content, description = _readBytes(source, what)
    if isinstance(password, str):
        password = password.encode()
    try:
        if b"-----BEGIN" in content:
            if b"PRIVATE KEY-----" not in content:
                raise ConfigurationError(f"{description} contains no PEM private key")
            return serialization.load_pem_private_key(content, password)
        return serialization.load_der_private_key(content, password)
    except TypeError as e:  # encrypted without password, or password given for a clear key
        raise ConfigurationError(f"{description}: {e}") from e
    except ValueError as e:
        raise ConfigurationError(f"{description} holds no usable private key: {e}") from e


def _publicDER(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def checkValidity(certificate: x509.Certificate, description: str, now=None) -> None:
    """Warn (L{CertificateValidityWarning}) if not valid at C{now}."""
    now = now or datetime.datetime.now(datetime.UTC)
    subject = certificate.subject.rfc4514_string()
    if certificate.not_valid_after_utc < now:
        warnings.warn(
            f"{description} ({subject}) expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            CertificateValidityWarning, stacklevel=4)
    elif certificate.not_valid_before_utc > now:
        warnings.warn(
            f"{description} ({subject}) is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            CertificateValidityWarning, stacklevel=4)


@dataclass(frozen=True)
class Identity:
    """
    A leaf certificate, the chain sent after it, and the matching key.
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: object

    def fingerprint(self) -> bytes:
        from cryptography.hazmat.primitives import hashes

        return self.certificate.fingerprint(hashes.SHA256())

    def useIn(self, context) -> None:
        """Install this identity in a pyOpenSSL Context."""
        context.use_certificate(self.certificate)
        for extra in self.chain:
            context.add_extra_chain_cert(extra)
        context.use_privatekey(self.key)
        context.check_privatekey()


def loadIdentity(certificate, privateKey=None, chain=(), password=None,
                 what: str = "certificate") -> Identity:
    """
    An L{Identity} from a certificate source (its first certificate is the
    leaf, the others are the chain), an optional separate key source (if
    absent the key is looked for in the certificate source: a combined PEM
    file or a Twisted C{PrivateCertificate}) and extra chain certificates.

    @raise ConfigurationError: anything unreadable, or the key does not
        match the certificate.
    @warn CertificateValidityWarning: the leaf is expired or not yet valid.
    """
    certificates = loadCertificates(certificate, what)
    if not certificates:
        raise ConfigurationError(f"{what}: no certificate found")
    leaf, rest = certificates[0], tuple(certificates[1:])
    rest += tuple(loadCertificates(list(chain), f"{what} chain")) if chain else ()
    if privateKey is None:
        privateKey = certificate
        if isinstance(certificate, (x509.Certificate, crypto.X509)):
            raise ConfigurationError(f"{what}: a private key is needed with a certificate object")
    key = loadPrivateKey(privateKey, password, what=f"private key for {what}")
    if _publicDER(key.public_key()) != _publicDER(leaf.public_key()):
        raise ConfigurationError(
            f"private key does not match {what} ({leaf.subject.rfc4514_string()})"
        )
    checkValidity(leaf, what)
    return Identity(leaf, rest, key)
